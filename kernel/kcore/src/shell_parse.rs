//! Shell command lines: `cmd args... [> file] [&]`, several separated by
//! `;`.
//!
//! Words split on whitespace (Unicode); single or double quotes keep spaces
//! and the characters `>`, `&`, `;` in a word, and quoted parts join the
//! unquoted text around them into one word (`a'b c'd` is `ab cd`; `''` is an
//! empty word). There is no escaping: a quote character is written inside
//! quotes of the other kind. `&` ends a command (a following `;` is
//! optional). Empty commands between `;` are skipped, but a `>` or `&`
//! with no command is an error.
//!
//! Contract: [`parse`] never panics; it returns the commands in order, each
//! with at least one word, or a [`ParseError`], in which case nothing should
//! run. Expansion (`$?`) is the shell's business, before parsing.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One command to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The words, the command name first.
    pub argv: Vec<String>,
    /// `> path`.
    pub redirect: Option<String>,
    /// `&`: run in the background.
    pub background: bool,
}

/// A line that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A quote was not closed.
    UnclosedQuote,
    /// `>` with no file after it.
    MissingRedirectTarget,
    /// `&` or `>` with no command.
    EmptyCommand,
    /// Two `>` in one command.
    TwoRedirects,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::UnclosedQuote => "unclosed quote",
            ParseError::MissingRedirectTarget => "'>' needs a file name",
            ParseError::EmptyCommand => "missing command",
            ParseError::TwoRedirects => "only one '>' per command",
        })
    }
}

impl core::error::Error for ParseError {}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Greater,
    Ampersand,
    Semicolon,
}

fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => word.push(other),
                        None => return Err(ParseError::UnclosedQuote),
                    }
                }
            }
            '>' | '&' | ';' => {
                if in_word {
                    tokens.push(Token::Word(core::mem::take(&mut word)));
                    in_word = false;
                }
                tokens.push(match c {
                    '>' => Token::Greater,
                    '&' => Token::Ampersand,
                    _ => Token::Semicolon,
                });
            }
            c if c.is_whitespace() => {
                if in_word {
                    tokens.push(Token::Word(core::mem::take(&mut word)));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

/// Parses a line into the commands to run, in order.
///
/// # Errors
/// A [`ParseError`]; then nothing runs.
pub fn parse(line: &str) -> Result<Vec<Command>, ParseError> {
    let mut commands = Vec::new();
    let mut current = Command {
        argv: Vec::new(),
        redirect: None,
        background: false,
    };
    let mut tokens = tokenize(line)?.into_iter().peekable();
    let finish = |c: &mut Command, commands: &mut Vec<Command>| -> Result<(), ParseError> {
        let done = core::mem::replace(
            c,
            Command {
                argv: Vec::new(),
                redirect: None,
                background: false,
            },
        );
        if done.argv.is_empty() {
            if done.redirect.is_some() || done.background {
                return Err(ParseError::EmptyCommand);
            }
        } else {
            commands.push(done);
        }
        Ok(())
    };
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w) => current.argv.push(w),
            Token::Greater if current.redirect.is_some() => return Err(ParseError::TwoRedirects),
            Token::Greater => match tokens.next() {
                Some(Token::Word(path)) => current.redirect = Some(path),
                _ => return Err(ParseError::MissingRedirectTarget),
            },
            Token::Ampersand => {
                current.background = true;
                if !matches!(tokens.peek(), None | Some(Token::Semicolon)) {
                    finish(&mut current, &mut commands)?;
                }
            }
            Token::Semicolon => finish(&mut current, &mut commands)?,
        }
    }
    finish(&mut current, &mut commands)?;
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use proptest::prelude::*;

    fn cmd(argv: &[&str], redirect: Option<&str>, background: bool) -> Command {
        Command {
            argv: argv.iter().map(ToString::to_string).collect(),
            redirect: redirect.map(ToString::to_string),
            background,
        }
    }

    #[test]
    fn words_split_on_whitespace() {
        assert_eq!(
            parse("  echo  one\ttwo  ").unwrap(),
            vec![cmd(&["echo", "one", "two"], None, false)]
        );
    }

    #[test]
    fn blank_lines_and_empty_commands_are_nothing() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("   ").unwrap(), vec![]);
        assert_eq!(parse(";;").unwrap(), vec![]);
        assert_eq!(
            parse("; a ;; b ;").unwrap(),
            vec![cmd(&["a"], None, false), cmd(&["b"], None, false)]
        );
    }

    #[test]
    fn redirect_and_background() {
        assert_eq!(
            parse("hog 4M > /tmp/x &").unwrap(),
            vec![cmd(&["hog", "4M"], Some("/tmp/x"), true)]
        );
        assert_eq!(
            parse("cat>out").unwrap(),
            vec![cmd(&["cat"], Some("out"), false)]
        );
        assert_eq!(
            parse("> out cat").unwrap(),
            vec![cmd(&["cat"], Some("out"), false)]
        );
    }

    #[test]
    fn ampersand_ends_a_command() {
        let two = vec![cmd(&["a"], None, true), cmd(&["b"], None, false)];
        assert_eq!(parse("a & b").unwrap(), two);
        assert_eq!(parse("a &; b").unwrap(), two);
        assert_eq!(parse("a&b").unwrap(), two);
        assert_eq!(parse("a &").unwrap(), vec![cmd(&["a"], None, true)]);
    }

    #[test]
    fn semicolons_separate_commands() {
        assert_eq!(
            parse("echo a; echo b").unwrap(),
            vec![
                cmd(&["echo", "a"], None, false),
                cmd(&["echo", "b"], None, false)
            ]
        );
    }

    #[test]
    fn quotes_keep_spaces_and_operators() {
        assert_eq!(
            parse("echo 'a b' \"c;d>e&f\"").unwrap(),
            vec![cmd(&["echo", "a b", "c;d>e&f"], None, false)]
        );
        assert_eq!(
            parse("echo a'b c'd").unwrap(),
            vec![cmd(&["echo", "ab cd"], None, false)]
        );
        assert_eq!(
            parse("echo \"it's\" '\"'").unwrap(),
            vec![cmd(&["echo", "it's", "\""], None, false)]
        );
        assert_eq!(
            parse("echo '' x").unwrap(),
            vec![cmd(&["echo", "", "x"], None, false)]
        );
        assert_eq!(
            parse("echo > 'a file'").unwrap(),
            vec![cmd(&["echo"], Some("a file"), false)]
        );
    }

    #[test]
    fn unclosed_quote() {
        assert_eq!(parse("echo 'abc"), Err(ParseError::UnclosedQuote));
        assert_eq!(parse("echo \"abc'"), Err(ParseError::UnclosedQuote));
        assert_eq!(parse("'"), Err(ParseError::UnclosedQuote));
    }

    #[test]
    fn missing_redirect_target() {
        assert_eq!(parse("echo >"), Err(ParseError::MissingRedirectTarget));
        assert_eq!(parse("echo > ;"), Err(ParseError::MissingRedirectTarget));
        assert_eq!(parse("echo > &"), Err(ParseError::MissingRedirectTarget));
        assert_eq!(parse("echo > > f"), Err(ParseError::MissingRedirectTarget));
    }

    #[test]
    fn empty_command() {
        assert_eq!(parse("&"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("> f"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("a; &"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("a & &"), Err(ParseError::EmptyCommand));
        assert_eq!(parse("> f; a"), Err(ParseError::EmptyCommand));
    }

    #[test]
    fn two_redirects() {
        assert_eq!(parse("a > f > g"), Err(ParseError::TwoRedirects));
        assert_eq!(parse("a >f b >g"), Err(ParseError::TwoRedirects));
        // One per command is fine.
        assert_eq!(
            parse("a > f; b > g").unwrap(),
            vec![cmd(&["a"], Some("f"), false), cmd(&["b"], Some("g"), false)]
        );
    }

    #[test]
    fn error_messages_are_one_short_line() {
        for e in [
            ParseError::UnclosedQuote,
            ParseError::MissingRedirectTarget,
            ParseError::EmptyCommand,
            ParseError::TwoRedirects,
        ] {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
        assert_eq!(ParseError::UnclosedQuote.to_string(), "unclosed quote");
    }

    /// Writes `word` so that [`parse`] reads it back as one word: runs of
    /// characters other than `'` inside `'...'`, each `'` as `"'"`.
    /// When `bare` and the word needs no quoting, it is written as is.
    fn quote(word: &str, bare: bool, out: &mut String) {
        let plain = !word.is_empty()
            && !word
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '>' | '&' | ';'));
        if bare && plain {
            out.push_str(word);
            return;
        }
        if word.is_empty() {
            out.push_str("''");
        }
        for (i, part) in word.split('\'').enumerate() {
            if i > 0 {
                out.push_str("\"'\"");
            }
            if !part.is_empty() {
                out.push('\'');
                out.push_str(part);
                out.push('\'');
            }
        }
    }

    fn render(commands: &[Command], bare: bool, skip_semicolon: bool) -> String {
        let mut line = String::new();
        for c in commands {
            for w in &c.argv {
                quote(w, bare, &mut line);
                line.push(' ');
            }
            if let Some(path) = &c.redirect {
                line.push_str("> ");
                quote(path, bare, &mut line);
            }
            if c.background {
                line.push_str(" &");
                if !skip_semicolon {
                    line.push(';');
                }
            } else {
                line.push(';');
            }
            line.push(' ');
        }
        line
    }

    fn command() -> impl Strategy<Value = Command> {
        let word = prop_oneof![
            "[a-z0-9/.$?-]{1,8}",
            any::<String>(),
            "[ a-z'\"><&;\t]{0,6}",
        ];
        (
            prop::collection::vec(word.clone(), 1..5),
            prop::option::of(word),
            any::<bool>(),
        )
            .prop_map(|(argv, redirect, background)| Command {
                argv,
                redirect,
                background,
            })
    }

    proptest! {
        #[test]
        fn rendered_commands_parse_back(
            commands in prop::collection::vec(command(), 0..5),
            bare: bool,
            skip_semicolon: bool,
        ) {
            let line = render(&commands, bare, skip_semicolon);
            prop_assert_eq!(parse(&line), Ok(commands), "{:?}", line);
        }

        #[test]
        fn any_string_parses_or_fails_without_panicking(line in any::<String>()) {
            if let Ok(commands) = parse(&line) {
                prop_assert!(commands.iter().all(|c| !c.argv.is_empty()));
            }
        }

        #[test]
        fn shell_like_strings_never_panic(line in "[ a-c'\"><&;]{0,24}") {
            if let Ok(commands) = parse(&line) {
                prop_assert!(commands.iter().all(|c| !c.argv.is_empty()));
            }
        }
    }
}
