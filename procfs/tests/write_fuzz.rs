//! Property tests of the `memquota` write parser: arbitrary bytes never
//! panic and fail with one short line; every valid size, in any spelling,
//! parses to its exact byte value; the parser agrees with a plain model.

use procfs::{HumanSize, LimitKind, SetLimit, SizeError, WriteError, parse_size};
use proptest::prelude::*;
use quota::{Limit, MAX_BYTES};

/// The longest an error message may be, however long the input.
const MAX_MESSAGE: usize = 256;

fn check_outcome(result: Result<SetLimit, WriteError>) -> Result<(), TestCaseError> {
    match result {
        Ok(request) => {
            if let Some(n) = request.limit().bytes() {
                prop_assert!(n <= MAX_BYTES);
            }
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.is_empty());
            prop_assert!(!message.contains(['\n', '\r']), "{message:?}");
            prop_assert!(message.len() <= MAX_MESSAGE, "{} chars", message.len());
        }
    }
    Ok(())
}

/// An independent model of the grammar, on `u128` and `str`.
fn model(input: &str) -> Option<(LimitKind, Limit)> {
    let size = |t: &str| -> Option<Limit> {
        if t == "max" {
            return Some(Limit::Unlimited);
        }
        let (digits, mult) = match t.char_indices().last()? {
            (i, 'k' | 'K') => (&t[..i], 1u128 << 10),
            (i, 'm' | 'M') => (&t[..i], 1 << 20),
            (i, 'g' | 'G') => (&t[..i], 1 << 30),
            _ => (t, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value = digits.parse::<u128>().ok()?.checked_mul(mult)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= MAX_BYTES)
            .map(Limit::Bytes)
    };
    let tokens: Vec<&str> = input.split_ascii_whitespace().collect();
    match tokens.as_slice() {
        ["high", s] => Some((LimitKind::High, size(s)?)),
        ["max", s] | [s] => Some((LimitKind::Max, size(s)?)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..12_288)) {
        check_outcome(SetLimit::parse(&input))?;
    }

    #[test]
    fn grammar_shaped_input_matches_the_model(
        input in "[ \t\n]{0,2}((high|max|foo|MAX)[ \t]{1,2})?\
                  (max|-?[0-9]{1,24}[KMGkmgQB]{0,2}|abc)?([ \t]{1,2}[0-9]{1,3}M?)?[ \t\n]{0,2}"
    ) {
        let parsed = SetLimit::parse(input.as_bytes());
        check_outcome(parsed)?;
        prop_assert_eq!(parsed.ok().map(|r| (r.kind(), r.limit())), model(&input), "{:?}", input);
    }

    #[test]
    fn every_valid_size_parses_to_its_value(
        (shift, n) in prop::sample::select(vec![0u32, 10, 20, 30])
            .prop_flat_map(|shift| (Just(shift), 0..=MAX_BYTES >> shift)),
        upper in any::<bool>(),
        prefix in prop::sample::select(vec!["", "max ", "high ", "  high\t"]),
        suffix_ws in prop::sample::select(vec!["", "\n", " \n", "\t"]),
    ) {
        let suffix = match (shift, upper) {
            (0, _) => "",
            (10, true) => "K",
            (10, false) => "k",
            (20, true) => "M",
            (20, false) => "m",
            (_, true) => "G",
            (_, false) => "g",
        };
        let text = format!("{prefix}{n}{suffix}{suffix_ws}");
        let request = SetLimit::parse(text.as_bytes()).unwrap();
        let kind = if prefix.contains("high") { LimitKind::High } else { LimitKind::Max };
        prop_assert_eq!(request.kind(), kind);
        prop_assert_eq!(request.limit(), Limit::Bytes(n << shift));
    }

    #[test]
    fn numbers_above_max_bytes_are_too_large(n in (MAX_BYTES as u128 + 1)..=u128::MAX) {
        prop_assert_eq!(parse_size(n.to_string().as_bytes()), Err(SizeError::TooLarge));
    }

    #[test]
    fn human_sizes_read_back_exactly(
        bytes in prop_oneof![
            0..=MAX_BYTES,
            (0..=MAX_BYTES >> 10).prop_map(|n| n << 10),
            (0..=MAX_BYTES >> 20).prop_map(|n| n << 20),
            (0..=MAX_BYTES >> 30).prop_map(|n| n << 30),
        ]
    ) {
        let text = HumanSize(bytes).to_string();
        prop_assert_eq!(parse_size(text.as_bytes()), Ok(Limit::Bytes(bytes)), "{}", text);
    }

    #[test]
    fn requests_display_as_text_that_parses_back(
        high in any::<bool>(),
        bytes in prop::option::of(0..=MAX_BYTES),
    ) {
        let kind = if high { LimitKind::High } else { LimitKind::Max };
        let limit = bytes.map_or(Limit::Unlimited, Limit::Bytes);
        let request = SetLimit::new(kind, limit).unwrap();
        prop_assert_eq!(SetLimit::parse(request.to_string().as_bytes()), Ok(request));
    }
}
