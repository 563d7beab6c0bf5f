//! Command lines: `cmd args... [> file] [&]`, several separated by `;`.
//! Words split on whitespace; single or double quotes keep spaces.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One command to run.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    /// The words, the command name first.
    pub argv: Vec<String>,
    /// `> path`.
    pub redirect: Option<String>,
    /// `&`: run in the background.
    pub background: bool,
}

/// A line that does not parse.
#[derive(Debug, PartialEq, Eq)]
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
