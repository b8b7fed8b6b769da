//! neighsyncd library
