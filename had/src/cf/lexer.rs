//! Tokens of main.cf and types.cf.
//!
//! The language has six punctuation tokens, quoted strings and bare words.
//! A bare word is any run of characters that are neither white space nor
//! one of `(){}=,"`: VCS writes paths, addresses and numbers unquoted
//! (`/usr/sbin/nginx`, `10.0.0.5`), so the lexer takes them whole and the
//! parser decides what a word means where it stands. `@` stays inside
//! words (`Address@north`), which the parser splits where it expects an
//! attribute name. `//` and `/* */` start comments where a token could
//! start; inside a word they are part of it.

use super::span::{FileId, Span};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Eq,
    Comma,
    /// A bare word, as written.
    Word(String),
    /// A quoted string, escapes (`\"`, `\\`) resolved.
    Str(String),
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
    /// First token of its line: declarations start lines, so error recovery
    /// resumes at the next token that has this set.
    pub line_start: bool,
}

/// How a token reads in a message: "expected `)`, found `=`".
pub fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBrace => "`{`".into(),
        Tok::RBrace => "`}`".into(),
        Tok::Eq => "`=`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Word(w) => format!("`{}`", shorten(w)),
        Tok::Str(s) => format!("string \"{}\"", shorten(s)),
        Tok::Eof => "end of file".into(),
    }
}

/// Long or binary junk makes unreadable messages; show its start only.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    let clean: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if clean.chars().count() > MAX {
        format!("{}...", clean.chars().take(MAX).collect::<String>())
    } else {
        clean
    }
}

pub fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '{' | '}' | '=' | ',' | '"')
}

/// Tokens of `text`, always ending with one `Eof`. Problems (unterminated
/// string or comment) go to `errs` as (where, message); the lexer always
/// gets to the end.
pub fn lex(file: FileId, text: &str, errs: &mut Vec<(Span, String)>) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks: Vec<Token> = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    // Moves past chars[i], keeping line and column.
    macro_rules! advance {
        () => {{
            if chars[i] == '\n' {
                line = line.saturating_add(1);
                col = 1;
            } else {
                col = col.saturating_add(1);
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i];
        let span = Span { file, line, column: col };
        if c.is_whitespace() {
            advance!();
            continue;
        }
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                advance!();
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            advance!();
            advance!();
            loop {
                if i >= chars.len() {
                    errs.push((span, "unterminated comment: expected `*/` before the end of the file".into()));
                    break;
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    advance!();
                    advance!();
                    break;
                }
                advance!();
            }
            continue;
        }
        let punct = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '=' => Some(Tok::Eq),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        // Anything between tokens (comments included) that ends a line
        // makes the next token start one.
        let starts_line = !matches!(toks.last(), Some(p) if p.span.line == line);
        if let Some(tok) = punct {
            advance!();
            toks.push(Token { tok, span, line_start: starts_line });
            continue;
        }
        if c == '"' {
            advance!();
            let mut s = String::new();
            loop {
                match chars.get(i).copied() {
                    // A string ends on its line: an unclosed quote must not
                    // swallow the rest of the file.
                    None | Some('\n') => {
                        errs.push((span, "unterminated string: expected `\"` before the end of the line".into()));
                        break;
                    }
                    Some('"') => {
                        advance!();
                        break;
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                        s.push(chars[i + 1]);
                        advance!();
                        advance!();
                    }
                    Some(ch) => {
                        s.push(ch);
                        advance!();
                    }
                }
            }
            toks.push(Token { tok: Tok::Str(s), span, line_start: starts_line });
            continue;
        }
        let begin = i;
        while i < chars.len() && is_word_char(chars[i]) {
            advance!();
        }
        toks.push(Token { tok: Tok::Word(chars[begin..i].iter().collect()), span, line_start: starts_line });
    }
    toks.push(Token { tok: Tok::Eof, span: Span { file, line, column: col }, line_start: true });
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        let mut errs = Vec::new();
        let t = lex(FileId(0), text, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_strings_and_punctuation() {
        let w = |s: &str| Tok::Word(s.into());
        assert_eq!(
            kinds(r#"IP ip1 (Address="10.0.0.5" Path=/usr/sbin/x A@n={a,b}) // c"#),
            vec![
                w("IP"),
                w("ip1"),
                Tok::LParen,
                w("Address"),
                Tok::Eq,
                Tok::Str("10.0.0.5".into()),
                w("Path"),
                Tok::Eq,
                w("/usr/sbin/x"),
                w("A@n"),
                Tok::Eq,
                Tok::LBrace,
                w("a"),
                Tok::Comma,
                w("b"),
                Tok::RBrace,
                Tok::RParen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn escapes_and_comments() {
        assert_eq!(
            kinds("/* x\n y */ \"a\\\"b\\\\c\\n\" // end"),
            vec![Tok::Str("a\"b\\c\\n".into()), Tok::Eof]
        );
    }

    #[test]
    fn positions_are_one_based_in_characters() {
        let mut errs = Vec::new();
        let t = lex(FileId(3), "a\n  é b\n\t(", &mut errs);
        let pos: Vec<(u32, u32, bool)> = t.iter().map(|t| (t.span.line, t.span.column, t.line_start)).collect();
        assert_eq!(pos, vec![(1, 1, true), (2, 3, true), (2, 5, false), (3, 2, true), (3, 3, true)]);
        assert_eq!(t[0].span.file, FileId(3));
    }

    #[test]
    fn unterminated_string_and_comment_are_reported() {
        let mut errs = Vec::new();
        let t = lex(FileId(0), "A = \"abc\nB = x /* never", &mut errs);
        assert_eq!(errs.len(), 2);
        assert_eq!((errs[0].0.line, errs[0].0.column), (1, 5));
        assert_eq!((errs[1].0.line, errs[1].0.column), (2, 7));
        assert!(t[3].line_start, "B starts line 2: {:?}", t[3]);
    }
}
