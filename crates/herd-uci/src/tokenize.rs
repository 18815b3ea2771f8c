//! libuci's line buffer and argument splitter, shared by the config parser,
//! `uci batch` and delta files.

/// Physical lines of an input, handed out one at a time (libuci's `fgets`).
#[derive(Debug, Clone)]
pub(crate) struct LineReader<'a> {
    input: &'a [u8],
    off: usize,
    line: usize,
}

impl<'a> LineReader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        LineReader {
            input,
            off: 0,
            line: 0,
        }
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.off >= self.input.len()
    }

    /// Byte offset of the next unread line.
    pub(crate) fn offset(&self) -> usize {
        self.off
    }

    /// Lines fully read so far.
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// `uci_getln`: replace the buffer from `offset` on with the next line.
    ///
    /// As with `fgets` + `strlen` in libuci, a NUL byte ends what is kept of
    /// a physical line, and the next physical line is then spliced on (the
    /// buffer does not end in a newline yet); a line that starts with NUL
    /// ends the read.
    pub(crate) fn getln(&mut self, tok: &mut Tok, offset: usize) {
        tok.buf.truncate(offset);
        loop {
            if self.at_eof() {
                return;
            }
            let rest = &self.input[self.off..];
            let mut content = None;
            let mut len = rest.len();
            for (i, &b) in rest.iter().enumerate() {
                if b == b'\n' {
                    len = i + 1;
                    break;
                }
                if b == 0 && content.is_none() {
                    content = Some(i);
                }
            }
            let content = &rest[..content.unwrap_or(len)];
            self.off += len;
            if content.is_empty() {
                return;
            }
            tok.buf.extend_from_slice(content);
            if content.ends_with(b"\n") {
                self.line += 1;
                return;
            }
        }
    }
}

/// The current logical line and the read position in it.
#[derive(Debug, Default)]
pub(crate) struct Tok {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

/// C `isspace`.
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl Tok {
    fn cur(&self) -> u8 {
        self.char_at(self.pos)
    }

    fn char_at(&self, i: usize) -> u8 {
        self.buf.get(i).copied().unwrap_or(0)
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while self.cur() != 0 && is_space(self.cur()) {
            self.pos += 1;
        }
    }

    /// libuci's `next_arg` without validation: one argument made of adjacent
    /// quoted and unquoted pieces; empty at the end of the line or at `;`/`#`.
    pub(crate) fn next_arg(
        &mut self,
        reader: &mut LineReader<'_>,
    ) -> Result<Vec<u8>, &'static str> {
        self.skip_whitespace();
        if self.cur() == b';' {
            self.pos += 1;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut next = true;
        loop {
            match self.cur() {
                b'\'' => self.single_quote(reader, &mut out)?,
                b'"' => self.double_quote(reader, &mut out)?,
                b'#' => {
                    self.buf.truncate(self.pos);
                    break;
                }
                0 => break,
                b';' => {
                    next = false;
                    break;
                }
                b'\\' => {
                    if self.backslash(reader) {
                        out.push(self.cur());
                        self.pos += 1;
                    }
                }
                _ => {
                    // A run of plain characters in one go.
                    let start = self.pos;
                    let end = self.buf[start..]
                        .iter()
                        .position(|&c| {
                            matches!(c, b'\'' | b'"' | b'#' | b';' | b'\\') || is_space(c)
                        })
                        .map_or(self.buf.len(), |i| start + i);
                    out.extend_from_slice(&self.buf[start..end]);
                    self.pos = end;
                }
            }
            if self.cur() == 0 || is_space(self.cur()) {
                break;
            }
        }
        if self.cur() != 0 && next {
            self.pos += 1;
        }
        Ok(out)
    }

    /// Skip a backslash; true if the next character is to be taken
    /// literally, false if it was a line continuation.
    fn backslash(&mut self, reader: &mut LineReader<'_>) -> bool {
        self.pos += 1;
        let c = self.cur();
        if c == 0
            || c == b'\n'
            || (c == b'\r'
                && self.char_at(self.pos + 1) == b'\n'
                && self.char_at(self.pos + 2) == 0)
        {
            let at = self.pos;
            reader.getln(self, at);
            return false;
        }
        true
    }

    fn single_quote(
        &mut self,
        reader: &mut LineReader<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'\'' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    let at = self.pos;
                    reader.getln(self, at);
                    if self.cur() == 0 {
                        return Err("EOF with unterminated '");
                    }
                }
                _ => {
                    let start = self.pos;
                    let end = self.buf[start..]
                        .iter()
                        .position(|&c| c == b'\'')
                        .map_or(self.buf.len(), |i| start + i);
                    out.extend_from_slice(&self.buf[start..end]);
                    self.pos = end;
                }
            }
        }
    }

    fn double_quote(
        &mut self,
        reader: &mut LineReader<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        self.pos += 1;
        loop {
            match self.cur() {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                0 => {
                    let at = self.pos;
                    reader.getln(self, at);
                    if self.cur() == 0 {
                        return Err("EOF with unterminated \"");
                    }
                }
                b'\\' => {
                    if self.backslash(reader) {
                        out.push(self.cur());
                        self.pos += 1;
                    }
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Split one `uci batch` command off the reader: up to `max` arguments,
/// ending at an empty argument (end of line, `#`, `;`). `None` at end of input.
pub(crate) fn batch_args(
    reader: &mut LineReader<'_>,
    max: usize,
) -> Option<Result<Vec<Vec<u8>>, &'static str>> {
    if reader.at_eof() {
        return None;
    }
    let mut tok = Tok::default();
    reader.getln(&mut tok, 0);
    let mut args = Vec::new();
    loop {
        match tok.next_arg(reader) {
            Err(e) => return Some(Err(e)),
            Ok(a) if a.is_empty() => break,
            Ok(a) => {
                if args.len() == max {
                    return Some(Err("Too many arguments"));
                }
                args.push(a)
            }
        }
    }
    Some(Ok(args))
}
