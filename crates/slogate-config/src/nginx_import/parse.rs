//! nginx's configuration syntax, read the way `ngx_conf_file.c` reads it: words separated by
//! whitespace, `;` ends a directive, `{ ... }` a block, `#` a comment, `"..."` and `'...'`
//! quoted words, `${var}` inside a word, and the escapes `\" \' \\ \t \r \n`
//! (any other backslash is kept, so regular expressions survive).
//!
//! `include` is followed here (globs too) and its directives spliced in place, each keeping
//! its own file and line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a directive was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file, as reached from the main file.
    pub file: Arc<str>,
    /// 1-based line of the directive's name.
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One argument: its value after unescaping, and whether it was quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The value.
    pub value: String,
    /// Written in quotes (`"..."` or `'...'`).
    pub quoted: bool,
}

/// A directive, with its block if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The first word.
    pub name: String,
    /// The words after it.
    pub args: Vec<Arg>,
    /// `{ ... }`, if the directive has a block.
    pub block: Option<Vec<Directive>>,
    /// Where it was written.
    pub source: Source,
}

impl Directive {
    /// A directive made by a test: every argument quoted or not, line 1 of `file`.
    #[cfg(test)]
    pub(crate) fn made(
        file: &str,
        name: String,
        args: Vec<String>,
        quoted: bool,
        block: Option<Vec<Directive>>,
    ) -> Directive {
        Directive {
            name,
            args: args
                .into_iter()
                .map(|value| Arg { value, quoted })
                .collect(),
            block,
            source: Source {
                file: Arc::from(file),
                line: 1,
            },
        }
    }

    /// The argument values.
    pub fn values(&self) -> Vec<&str> {
        self.args.iter().map(|a| a.value.as_str()).collect()
    }

    /// The `i`th argument, or "".
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", |a| a.value.as_str())
    }

    /// The block's directives (empty without a block).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Not valid nginx syntax: where and why. Maps to exit code 2.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SyntaxError {
    /// The file.
    pub file: String,
    /// 1-based line; 0 when the file itself cannot be read.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // The file as a whole (it cannot be read).
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(Arg),
    Semicolon,
    Open,
    Close,
}

struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    file: Arc<str>,
}

impl<'a> Lexer<'a> {
    fn error(&self, line: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn bump(&mut self) -> Option<u8> {
        let c = *self.text.get(self.pos)?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// The next token and the line it starts on; `None` at the end of the text.
    fn next(&mut self) -> Result<Option<(Token, usize)>, SyntaxError> {
        loop {
            let Some(&c) = self.text.get(self.pos) else {
                return Ok(None);
            };
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.bump();
                }
                b'#' => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        let line = self.line;
        let c = self.text[self.pos];
        let token = match c {
            b';' => {
                self.bump();
                Token::Semicolon
            }
            b'{' => {
                self.bump();
                Token::Open
            }
            b'}' => {
                self.bump();
                Token::Close
            }
            b'"' | b'\'' => {
                self.bump();
                let start = self.pos;
                loop {
                    match self.bump() {
                        None => {
                            return Err(
                                self.error(line, format!("unterminated {} string", c as char))
                            )
                        }
                        Some(b'\\') => {
                            self.bump();
                        }
                        Some(q) if q == c => break,
                        Some(_) => {}
                    }
                }
                let raw = &self.text[start..self.pos - 1];
                if let Some(&next) = self.text.get(self.pos) {
                    if !matches!(next, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b')') {
                        return Err(self.error(
                            self.line,
                            format!("unexpected {:?} after a quoted string", next as char),
                        ));
                    }
                }
                Token::Word(Arg {
                    value: unescape(raw),
                    quoted: true,
                })
            }
            _ => {
                // As nginx: a word ends at whitespace, ";" or "{" (but "${" is a variable);
                // "}" inside a word is part of it.
                let start = self.pos;
                while let Some(&c) = self.text.get(self.pos) {
                    match c {
                        b' ' | b'\t' | b'\r' | b'\n' | b';' => break,
                        b'{' if self.pos == start || self.text[self.pos - 1] != b'$' => break,
                        b'\\' => {
                            self.bump();
                        }
                        _ => {}
                    }
                    self.bump();
                }
                Token::Word(Arg {
                    value: unescape(&self.text[start..self.pos]),
                    quoted: false,
                })
            }
        };
        Ok(Some((token, line)))
    }
}

fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            match raw.get(i + 1) {
                Some(&c @ (b'"' | b'\'' | b'\\')) => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                Some(b't') => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                Some(b'r') => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                Some(b'n') => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one file's text (no includes followed). `file` names it in errors and sources.
pub fn parse_text(file: &str, text: &str) -> Result<Vec<Directive>, SyntaxError> {
    let mut lexer = Lexer {
        text: text.as_bytes(),
        pos: 0,
        line: 1,
        file: Arc::from(file),
    };
    let (directives, end) = parse_block(&mut lexer, None)?;
    debug_assert!(end.is_none());
    Ok(directives)
}

/// Reads directives until `}` (when `opened_at` is the line of the `{`) or the end.
fn parse_block(
    lexer: &mut Lexer<'_>,
    opened_at: Option<usize>,
) -> Result<(Vec<Directive>, Option<()>), SyntaxError> {
    let mut out = Vec::new();
    loop {
        let Some((token, line)) = lexer.next()? else {
            return match opened_at {
                Some(open) => Err(lexer.error(
                    lexer.line,
                    format!("unexpected end of file, expecting \"}}\" (the block opened on line {open})"),
                )),
                None => Ok((out, None)),
            };
        };
        let name = match token {
            Token::Word(w) => w.value,
            Token::Close => {
                return match opened_at {
                    Some(_) => Ok((out, Some(()))),
                    None => Err(lexer.error(line, "unexpected \"}\"")),
                }
            }
            Token::Semicolon => return Err(lexer.error(line, "unexpected \";\"")),
            Token::Open => return Err(lexer.error(line, "unexpected \"{\" with no directive name")),
        };
        let mut args = Vec::new();
        let block = loop {
            match lexer.next()? {
                Some((Token::Word(w), _)) => args.push(w),
                Some((Token::Semicolon, _)) => break None,
                Some((Token::Open, open)) => {
                    let (children, _) = parse_block(lexer, Some(open))?;
                    break Some(children);
                }
                Some((Token::Close, l)) => {
                    return Err(lexer.error(l, format!("unexpected \"}}\": directive {name:?} has no \";\"")))
                }
                None => {
                    return Err(lexer.error(
                        lexer.line,
                        format!("unexpected end of file: directive {name:?} (line {line}) has no \";\" or \"{{\""),
                    ))
                }
            }
        };
        out.push(Directive {
            name,
            args,
            block,
            source: Source {
                file: lexer.file.clone(),
                line,
            },
        });
    }
}

/// An `include` that matched nothing readable: reported, not fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadInclude {
    /// The include directive.
    pub source: Source,
    /// The pattern or path.
    pub path: String,
    /// Why it was not read.
    pub reason: String,
}

/// A parsed configuration with its includes spliced in.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// Top-level directives.
    pub directives: Vec<Directive>,
    /// Includes that could not be read.
    pub unread: Vec<UnreadInclude>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads `path` and every file it includes. Relative include paths are resolved from the
/// main file's directory (nginx's configuration prefix).
pub fn parse_file(path: &Path) -> Result<Parsed, SyntaxError> {
    let file = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| SyntaxError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8_lossy(&text);
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut unread = Vec::new();
    let directives = parse_text(&file, &text)?;
    let directives = expand(directives, &base, 0, &mut unread)?;
    Ok(Parsed { directives, unread })
}

fn expand(
    directives: Vec<Directive>,
    base: &Path,
    depth: usize,
    unread: &mut Vec<UnreadInclude>,
) -> Result<Vec<Directive>, SyntaxError> {
    let mut out = Vec::with_capacity(directives.len());
    for mut d in directives {
        if d.name == "include" && d.block.is_none() {
            if d.args.len() != 1 {
                return Err(SyntaxError {
                    file: d.source.file.to_string(),
                    line: d.source.line,
                    message: format!("\"include\" takes one path, not {}", d.args.len()),
                });
            }
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(SyntaxError {
                    file: d.source.file.to_string(),
                    line: d.source.line,
                    message: format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (a cycle?)"),
                });
            }
            let pattern = d.arg(0).to_string();
            let full = if Path::new(&pattern).is_absolute() {
                PathBuf::from(&pattern)
            } else {
                base.join(&pattern)
            };
            let files = match glob_files(&full) {
                Ok(files) => files,
                Err(reason) => {
                    unread.push(UnreadInclude {
                        source: d.source.clone(),
                        path: pattern,
                        reason,
                    });
                    continue;
                }
            };
            for f in files {
                let name = f.display().to_string();
                let text = match std::fs::read(&f) {
                    Ok(t) => t,
                    Err(e) => {
                        unread.push(UnreadInclude {
                            source: d.source.clone(),
                            path: name,
                            reason: format!("cannot read: {e}"),
                        });
                        continue;
                    }
                };
                let parsed = parse_text(&name, &String::from_utf8_lossy(&text))?;
                out.extend(expand(parsed, base, depth + 1, unread)?);
            }
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(expand(block, base, depth, unread)?);
        }
        out.push(d);
    }
    Ok(out)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Files matching `pattern` (globs in any component), sorted as nginx sorts them. A pattern
/// without wildcards must name an existing file; one with wildcards may match nothing.
fn glob_files(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.display().to_string();
    if !has_glob(&text) {
        return if pattern.is_file() {
            Ok(vec![pattern.to_path_buf()])
        } else {
            Err(format!("{text} does not exist or is not a file"))
        };
    }
    let mut current = vec![PathBuf::from(if pattern.is_absolute() { "/" } else { "" })];
    let components: Vec<String> = pattern
        .components()
        .filter(|c| !matches!(c, std::path::Component::RootDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for (i, comp) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let mut next = Vec::new();
        for dir in &current {
            if !has_glob(comp) {
                next.push(dir.join(comp));
                continue;
            }
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".").to_path_buf()
            } else {
                dir.clone()
            };
            let Ok(entries) = std::fs::read_dir(&listing) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && wildcard(comp.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        current = next
            .into_iter()
            .filter(|p| if last { p.is_file() } else { p.is_dir() })
            .collect();
    }
    Ok(current)
}

/// Shell-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!a]`.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|&c| c == b']').map(|p| p + 1) else {
                return name.first() == Some(&b'[') && wildcard(rest, &name[1..]);
            };
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            let (negate, set) = match rest[..close].split_first() {
                Some((b'!' | b'^', set)) => (true, set),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && wildcard(&rest[close + 1..], name_rest)
        }
        Some((&p, rest)) => name.first() == Some(&p) && wildcard(rest, &name[1..]),
    }
}

/// Prints directives back as nginx syntax, every word double-quoted (so any value survives).
pub fn print(directives: &[Directive]) -> String {
    let mut out = String::new();
    print_into(&mut out, directives, 0);
    out
}

fn print_into(out: &mut String, directives: &[Directive], depth: usize) {
    for d in directives {
        out.push_str(&"    ".repeat(depth));
        out.push_str(&quote(&d.name));
        for a in &d.args {
            out.push(' ');
            out.push_str(&quote(&a.value));
        }
        match &d.block {
            None => out.push_str(";\n"),
            Some(children) => {
                out.push_str(" {\n");
                print_into(out, children, depth + 1);
                out.push_str(&"    ".repeat(depth));
                out.push_str("}\n");
            }
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Directive> {
        parse_text("t.conf", text).expect("parses")
    }

    #[test]
    fn blocks_quotes_variables_and_comments() {
        let d = parse(
            "# c\nhttp {\n  server { listen 80; # trailing\n    set $x \"a b\\\"c\";\n    add_header X-T 't=${msec}';\n    location ~ ^/(a|b)/\\d+$ { return 200; }\n  }\n}\n",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "http");
        let server = &d[0].children()[0];
        assert_eq!(server.source.line, 3);
        assert_eq!(server.children()[0].values(), ["80"]);
        assert_eq!(server.children()[1].values(), ["$x", "a b\"c"]);
        assert_eq!(server.children()[2].values(), ["X-T", "t=${msec}"]);
        let loc = &server.children()[3];
        assert_eq!(loc.values(), ["~", "^/(a|b)/\\d+$"]);
        assert_eq!(loc.source.line, 6);
    }

    #[test]
    fn variables_in_braces_inside_words() {
        let d = parse("proxy_set_header X-Request-Start t=${msec};\nif ($a) { }\n");
        assert_eq!(d[0].arg(1), "t=${msec}");
        assert_eq!(d[1].values(), ["($a)"]);
        assert_eq!(d[1].children().len(), 0);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, msg) in [
            ("a b;\n}\n", 2, "unexpected \"}\""),
            ("server {\n listen 80;\n", 3, "expecting \"}\""),
            ("a \"b;\n", 1, "unterminated"),
            ("listen 80\n}", 2, "has no \";\""),
            ("x \"a\"b;", 1, "after a quoted string"),
            ("\n;", 2, "unexpected \";\""),
            ("x 'a'}", 1, "after a quoted string"),
        ] {
            let e = parse_text("t.conf", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("t.conf:{line}: ")),
                "{e}"
            );
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.conf~"));
        assert!(wildcard(b"site-?", b"site-1"));
        assert!(wildcard(b"[a-c]x", b"bx"));
        assert!(!wildcard(b"[!a-c]x", b"bx"));
        assert!(wildcard(b"*", b""));
    }

    #[test]
    fn includes_with_globs_keep_their_own_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/b.conf"), "\nb 2;\n").unwrap();
        std::fs::write(dir.path().join("conf.d/a.conf"), "a 1;\n").unwrap();
        std::fs::write(dir.path().join("conf.d/skip.txt"), "nope;\n").unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            "http {\n include conf.d/*.conf;\n include none/*.conf;\n include missing.conf;\n}\n",
        )
        .unwrap();
        let p = parse_file(&dir.path().join("nginx.conf")).unwrap();
        let names: Vec<_> = p.directives[0]
            .children()
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let b = &p.directives[0].children()[1];
        assert!(b.source.file.ends_with("conf.d/b.conf"));
        assert_eq!(b.source.line, 2);
        assert_eq!(
            p.unread.len(),
            1,
            "an empty glob is fine, a missing file is not"
        );
        assert_eq!(p.unread[0].path, "missing.conf");
    }

    #[test]
    fn include_cycles_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.conf"), "include a.conf;\n").unwrap();
        let e = parse_file(&dir.path().join("a.conf")).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn word() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z_]{1,12}",
                "\\$[a-z_]{1,8}",
                "[ -~]{0,16}",
                "[\\x00-\\x7f]{0,8}",
                ".{0,6}",
            ]
        }

        fn directive() -> impl Strategy<Value = Directive> {
            let leaf = (word(), prop::collection::vec(word(), 0..4))
                .prop_map(|(name, args)| Directive::made("t", name, args, true, None));
            leaf.prop_recursive(3, 24, 6, |inner| {
                (
                    word(),
                    prop::collection::vec(word(), 0..3),
                    prop::collection::vec(inner, 0..6),
                )
                    .prop_map(|(name, args, children)| {
                        Directive::made("t", name, args, true, Some(children))
                    })
            })
        }

        fn deep(ds: &[Directive]) -> String {
            format!("{:?}", strip_all(ds))
        }

        fn strip_all(ds: &[Directive]) -> Vec<String> {
            ds.iter()
                .map(|d| {
                    format!(
                        "{:?} {:?} {:?}",
                        d.name,
                        d.values(),
                        d.block.as_ref().map(|b| strip_all(b))
                    )
                })
                .collect()
        }

        proptest! {
            #[test]
            fn printing_then_parsing_gives_the_same_tree(tree in prop::collection::vec(directive(), 0..6)) {
                let text = print(&tree);
                let back = parse_text("t", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(deep(&back), deep(&tree));
            }

            #[test]
            fn random_bytes_never_panic_and_errors_name_a_line(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let text = String::from_utf8_lossy(&bytes);
                let lines = text.matches('\n').count() + 1;
                if let Err(e) = parse_text("r.conf", &text) {
                    prop_assert!(e.line >= 1 && e.line <= lines, "{} of {}", e, lines);
                    prop_assert!(e.to_string().starts_with("r.conf:"));
                }
            }

            #[test]
            fn random_nginx_like_text_never_panics(text in "[a-z{};\"'\\\\$# \n()]{0,120}") {
                if let Err(e) = parse_text("r.conf", &text) {
                    prop_assert!(e.line >= 1);
                }
            }
        }
    }
}
