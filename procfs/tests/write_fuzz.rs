//! Property tests of the `memquota` write parser: arbitrary bytes never
//! panic and fail with one short line; every valid size and process count,
//! in any spelling, parses to its exact value; the parser agrees with a
//! plain model.

use procfs::{
    HumanSize, LimitKind, MemquotaWrite, PidsError, PidsMax, SetLimit, SizeError, WriteError,
    parse_size,
};
use proptest::prelude::*;
use quota::{Limit, MAX_BYTES};

/// The longest an error message may be, however long the input.
const MAX_MESSAGE: usize = 256;

fn check_outcome(result: Result<MemquotaWrite, WriteError>) -> Result<(), TestCaseError> {
    match result {
        Ok(MemquotaWrite::Limit(request)) => {
            if let Some(n) = request.limit().bytes() {
                prop_assert!(n <= MAX_BYTES);
            }
        }
        Ok(MemquotaWrite::PidsMax(max)) => {
            if let Some(n) = max.count() {
                prop_assert!(n <= PidsMax::MAX_COUNT);
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

/// What a write asks for, in the model's terms.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Set the account's `max` or `high`.
    Memory(LimitKind, Limit),
    /// Set the session's `pids.max`: a count, or `None` for `max`.
    Pids(Option<u32>),
}

impl From<MemquotaWrite> for Request {
    fn from(w: MemquotaWrite) -> Self {
        match w {
            MemquotaWrite::Limit(r) => Request::Memory(r.kind(), r.limit()),
            MemquotaWrite::PidsMax(max) => Request::Pids(max.count()),
        }
    }
}

/// An independent model of the whole grammar, on `u128` and `str`.
fn model(input: &str) -> Option<Request> {
    let count = |t: &str| -> Option<Option<u32>> {
        if t == "max" {
            return Some(None);
        }
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = t.parse::<u128>().ok()?;
        (n <= 1 << 22).then(|| Some(u32::try_from(n).unwrap()))
    };
    let tokens: Vec<&str> = input.split_ascii_whitespace().collect();
    match tokens.as_slice() {
        ["pids", c] => Some(Request::Pids(count(c)?)),
        _ => memory_model(input).map(|(kind, limit)| Request::Memory(kind, limit)),
    }
}

/// An independent model of the memory half of the grammar.
fn memory_model(input: &str) -> Option<(LimitKind, Limit)> {
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
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec!["", "pids ", "high ", "max "]),
        input in proptest::collection::vec(any::<u8>(), 0..12_288),
    ) {
        let input = [prefix.as_bytes(), &input].concat();
        check_outcome(MemquotaWrite::parse(&input))?;
        check_outcome(SetLimit::parse(&input).map(MemquotaWrite::Limit))?;
    }

    #[test]
    fn grammar_shaped_input_matches_the_model(
        input in "[ \t\n]{0,2}((high|max|pids|foo|MAX|PIDS)[ \t]{1,2})?\
                  (max|-?[0-9]{1,24}[KMGkmgQB]{0,2}|abc)?([ \t]{1,2}[0-9]{1,3}M?)?[ \t\n]{0,2}"
    ) {
        let parsed = MemquotaWrite::parse(input.as_bytes());
        check_outcome(parsed)?;
        prop_assert_eq!(parsed.ok().map(Request::from), model(&input), "{:?}", input);
        // The memory-only parser reads exactly the memory half.
        let memory = SetLimit::parse(input.as_bytes());
        prop_assert_eq!(
            memory.ok().map(|r| (r.kind(), r.limit())),
            memory_model(&input),
            "{:?}",
            input
        );
    }

    #[test]
    fn every_valid_pids_count_parses_to_its_value(
        n in prop_oneof![0..=PidsMax::MAX_COUNT, 0..=64u32],
        zeros in 0..3usize,
        space in prop::sample::select(vec![" ", "\t", "  \n "]),
        trailer in prop::sample::select(vec!["", "\n", " \r\n"]),
    ) {
        let text = format!("pids{space}{}{n}{trailer}", "0".repeat(zeros));
        prop_assert_eq!(
            MemquotaWrite::parse(text.as_bytes()),
            Ok(MemquotaWrite::PidsMax(PidsMax::new(n).unwrap()))
        );
    }

    #[test]
    fn pids_counts_above_the_most_are_too_large(
        n in (u128::from(PidsMax::MAX_COUNT) + 1)..=u128::MAX,
    ) {
        let token = n.to_string();
        prop_assert_eq!(PidsMax::parse(token.as_bytes()), Err(PidsError::TooLarge));
        let message = MemquotaWrite::parse(format!("pids {token}").as_bytes())
            .unwrap_err()
            .to_string();
        let named = format!("`{}", &token[..token.len().min(32)]);
        prop_assert!(message.contains(&named), "{}", message);
    }

    #[test]
    fn requests_of_either_kind_display_as_text_that_parses_back(
        request in prop_oneof![
            (any::<bool>(), prop::option::of(0..=MAX_BYTES)).prop_map(|(high, bytes)| {
                let kind = if high { LimitKind::High } else { LimitKind::Max };
                let limit = bytes.map_or(Limit::Unlimited, Limit::Bytes);
                MemquotaWrite::Limit(SetLimit::new(kind, limit).unwrap())
            }),
            prop::option::of(0..=PidsMax::MAX_COUNT).prop_map(|n| {
                MemquotaWrite::PidsMax(PidsMax::from_count(n).unwrap())
            }),
        ],
    ) {
        prop_assert_eq!(MemquotaWrite::parse(request.to_string().as_bytes()), Ok(request));
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
