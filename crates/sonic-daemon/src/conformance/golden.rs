//! The `expected` file of a scenario: compared with the transcript, or
//! (re)written when [`super::BLESS_VAR`] is `1`.

use std::path::Path;

use super::{BLESS_VAR, EXPECTED_FILE};

/// Whether the expected files are being regenerated (`CONFORMANCE_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var(BLESS_VAR).is_ok_and(|v| v == "1")
}

/// Compares `actual` with `<dir>/expected`; when [`blessing`], writes it
/// there instead (only if it differs).
///
/// Errors: the file is missing or unreadable, or differs (the message
/// holds a line diff), or cannot be written.
pub fn check(dir: &Path, actual: &str) -> Result<(), String> {
    let path = dir.join(EXPECTED_FILE);
    let expected = std::fs::read_to_string(&path);
    if blessing() {
        if expected.as_deref().ok() != Some(actual) {
            std::fs::write(&path, actual)
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        }
        return Ok(());
    }
    let expected = expected.map_err(|e| {
        format!(
            "{}: cannot read ({e}); generate it with {BLESS_VAR}=1 and review it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{}: differs from the run (- expected, + actual):\n{}",
        path.display(),
        diff(&expected, actual)
    ))
}

/// A line diff of `a` and `b` (longest common subsequence), each changed
/// line prefixed `-` or `+` with its line number in its file, with one
/// line of context around each change; unchanged stretches are elided.
pub fn diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    enum Op<'s> {
        Same(usize, &'s str),
        Del(usize, &'s str),
        Add(usize, &'s str),
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Del(i, a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(j, b[j]));
            j += 1;
        }
    }
    let changed: Vec<bool> = ops.iter().map(|o| !matches!(o, Op::Same(..))).collect();
    let near = |k: usize| {
        changed[k.saturating_sub(1)..(k + 2).min(changed.len())]
            .iter()
            .any(|c| *c)
    };
    let mut out = String::new();
    let mut elided = false;
    for (k, op) in ops.iter().enumerate() {
        if !near(k) {
            if !elided {
                out.push_str("   ...\n");
                elided = true;
            }
            continue;
        }
        elided = false;
        let line = match op {
            Op::Same(i, s) => format!("  {:>4} {s}\n", i + 1),
            Op::Del(i, s) => format!("- {:>4} {s}\n", i + 1),
            Op::Add(j, s) => format!("+ {:>4} {s}\n", j + 1),
        };
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let d = diff("a\nb\nc\nd\ne\nf\n", "a\nb\nC\nd\ne\nf\ng\n");
        assert_eq!(
            d,
            "   ...\n     2 b\n-    3 c\n+    3 C\n     4 d\n   ...\n     6 f\n+    7 g\n"
        );
    }
}
