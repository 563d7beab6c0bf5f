//! Finding one field in any of the `/proc` files, for tests and tools.
//!
//! The files use two line shapes: `key value` (`memquota`) and
//! `Key:<spaces or tab>value` (`status`, `meminfo`). [`find_field`] reads
//! either; the table in `/proc/memquota` is not made of fields.

/// The value of the first line whose key is exactly `key`, trimmed.
pub fn find_field<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?;
        // The key must end here: `max` does not match `maxfoo 1`.
        let value = match rest.strip_prefix(':') {
            Some(value) => value,
            None if rest.starts_with([' ', '\t']) => rest,
            None => return None,
        };
        Some(value.trim_matches([' ', '\t']))
    })
}

#[cfg(test)]
mod tests {
    use super::find_field;

    #[test]
    fn reads_space_separated_fields() {
        let text = "pid 7\nmax 4194304\nsession.max max\n";
        assert_eq!(find_field(text, "pid"), Some("7"));
        assert_eq!(find_field(text, "max"), Some("4194304"));
        assert_eq!(find_field(text, "session.max"), Some("max"));
        assert_eq!(find_field(text, "high"), None);
    }

    #[test]
    fn reads_colon_fields_with_tabs_or_padding() {
        let text = "Name:\tsh\nPPid:\t5\nHeapTotal:     1024\nEmpty:\n";
        assert_eq!(find_field(text, "Name"), Some("sh"));
        assert_eq!(find_field(text, "PPid"), Some("5"));
        assert_eq!(find_field(text, "HeapTotal"), Some("1024"));
        assert_eq!(find_field(text, "Empty"), Some(""));
    }

    #[test]
    fn key_must_match_whole() {
        let text = "maxfoo 1\nPPid:\t5\n";
        assert_eq!(find_field(text, "max"), None);
        assert_eq!(find_field(text, "Pid"), None);
        assert_eq!(find_field(text, "PPi"), None);
    }
}
