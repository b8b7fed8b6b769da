//! portsyncd library
