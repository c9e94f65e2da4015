//! The original's formatting and matching rules, reproduced where the output depends on them:
//! Python's `{:,}` thousands separators, `str(datetime.utcfromtimestamp(ts))`, `repr(str)`, and
//! `fnmatch.fnmatch` globs (`*`, `?`, `[seq]`, `[!seq]`; case-sensitive, `*` crosses `/`).

use time::OffsetDateTime;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Unix timestamp as Python prints `datetime.utcfromtimestamp(ts)`: `2019-03-12 00:00:00`,
/// with `.ffffff` microseconds only when there are some (rounded half to even). `None` outside
/// the years 1 to 9999.
pub fn utc_datetime(ts: f64) -> Option<String> {
    if !ts.is_finite() {
        return None;
    }
    let whole = ts.trunc();
    let mut micros = ((ts - whole) * 1e6).round_ties_even() as i64;
    let mut secs = whole as i64;
    if micros >= 1_000_000 {
        secs += 1;
        micros -= 1_000_000;
    } else if micros < 0 {
        secs -= 1;
        micros += 1_000_000;
    }
    let dt = OffsetDateTime::from_unix_timestamp(secs).ok()?;
    if !(1..=9999).contains(&dt.year()) {
        return None;
    }
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    Some(text)
}

/// Python's `repr()` of a string: single quotes unless the text holds `'` and no `"`.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let v = c as u32;
                if v < 0x100 {
                    out.push_str(&format!("\\x{v:02x}"));
                } else {
                    out.push_str(&format!("\\u{v:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `fnmatch.fnmatch(name, pattern)` on POSIX.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut n, mut p) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, name index it took up to).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(p + 1),
            Some('[') => match class(&pattern, p, name[n]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // No closing bracket: a literal '['.
                None => (name[n] == '[').then_some(p + 1),
            },
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((after_star, taken))) => {
                star = Some((after_star, taken + 1));
                p = after_star;
                n = taken + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The bracket expression starting at `pattern[start] == '['`: whether `c` matches it and the
/// index after its `]`, or `None` when it has no closing bracket.
fn class(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let negate = pattern.get(start + 1) == Some(&'!');
    let set_start = start + 1 + usize::from(negate);
    // A ']' right after '[' or '[!' is part of the set.
    let search_from = set_start + usize::from(pattern.get(set_start) == Some(&']'));
    let close = search_from + pattern.get(search_from..)?.iter().position(|&x| x == ']')?;
    let set = &pattern[set_start..close];
    let mut matched = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            if set[i] <= c && c <= set[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if set[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_027_245), "1,027,245");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn dates_print_as_pythons_utcfromtimestamp() {
        assert_eq!(
            utc_datetime(1_552_348_800.0).as_deref(),
            Some("2019-03-12 00:00:00")
        );
        assert_eq!(
            utc_datetime(1_552_435_199.0).as_deref(),
            Some("2019-03-12 23:59:59")
        );
        assert_eq!(
            utc_datetime(1_551_657_600.25).as_deref(),
            Some("2019-03-04 00:00:00.250000")
        );
        assert_eq!(
            utc_datetime(-0.5).as_deref(),
            Some("1969-12-31 23:59:59.500000")
        );
        assert_eq!(utc_datetime(1e12), None);
        assert_eq!(utc_datetime(f64::NAN), None);
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("main/x"), "'main/x'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("a\\b\n\u{1}"), "'a\\\\b\\n\\x01'");
    }

    #[test]
    fn globs_match_like_fnmatch() {
        let cases = [
            ("normandy/recipes", "normandy/*", true),
            ("normandy", "normandy/*", false),
            ("shield-recipe-client/a/b", "shield-recipe-client/*", true),
            (
                "main/url-classifier-skip-urls",
                "main/url-classifier-skip-urls",
                true,
            ),
            (
                "main/url-classifier-skip-urls-2",
                "main/url-classifier-skip-urls",
                false,
            ),
            ("main/cfr", "*/cfr", true),
            ("main/cfr", "main/cf?", true),
            ("main/cfr", "main/c?", false),
            ("main/cfr", "main/[abc]fr", true),
            ("main/cfr", "main/[!abc]fr", false),
            ("main/dfr", "main/[a-d]fr", true),
            ("main/efr", "main/[a-d]fr", false),
            ("main/]fr", "main/[]]fr", true),
            ("main/[fr", "main/[fr", true),
            ("Main/cfr", "main/*", false),
            ("aaa", "*a*a*a*", true),
            ("aa", "*a*a*a*", false),
            ("", "*", true),
            ("x", "", false),
        ];
        for (name, pattern, expected) in cases {
            assert_eq!(fnmatch(name, pattern), expected, "{name} ~ {pattern}");
        }
    }
}
