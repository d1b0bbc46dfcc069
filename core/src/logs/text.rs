//! flint's log as text on stderr, each event formatted once.
//!
//! The lines are those tracing-subscriber's `fmt` layer writes with flint's
//! settings (`with_target(false)`, [`super::Clock`]'s timestamps, ANSI
//! colours on a terminal, control characters of the message escaped),
//! byte for byte: the tests compare the two. The `fmt` layer and
//! [`super::Capture`] each formatted the message of every event, and under
//! a stream of `Accept=yes` connections (two lines each) that was a tenth
//! of the event loop's time. [`Text`] formats it once, for stderr and, in
//! `flint run`, for the rings `journalctl` reads.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};

/// The layer: `ansi` when stderr is a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    ansi: bool,
}

impl Text {
    pub fn new(ansi: bool) -> Text {
        Text { ansi }
    }

    /// Formats `event` at `now` (since the epoch) into `line`, the message
    /// alone into `message`; whether the event had a message.
    fn format(
        self,
        event: &tracing::Event<'_>,
        now: Duration,
        line: &mut String,
        message: &mut String,
    ) -> bool {
        line.clear();
        message.clear();
        if self.ansi {
            line.push_str("\x1b[2m");
            let _ = super::write_time(line, now);
            line.push_str("\x1b[0m ");
        } else {
            let _ = super::write_time(line, now);
            line.push(' ');
        }
        let level = match *event.metadata().level() {
            tracing::Level::TRACE => ("TRACE", "35"),
            tracing::Level::DEBUG => ("DEBUG", "34"),
            tracing::Level::INFO => (" INFO", "32"),
            tracing::Level::WARN => (" WARN", "33"),
            tracing::Level::ERROR => ("ERROR", "31"),
        };
        if self.ansi {
            let _ = write!(line, "\x1b[{}m{}\x1b[0m ", level.1, level.0);
        } else {
            line.push_str(level.0);
            line.push(' ');
        }
        let mut fields = Fields {
            line,
            message,
            ansi: self.ansi,
            empty: true,
            has_message: false,
        };
        event.record(&mut fields);
        let has_message = fields.has_message;
        line.push('\n');
        has_message
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Text {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        thread_local! {
            static BUFFERS: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let handle = |line: &mut String, message: &mut String| {
            let has_message = self.format(event, now, line, message);
            super::write_stderr(line.as_bytes());
            if has_message
                && !message.is_empty()
                && super::CAPTURE.load(Ordering::Relaxed)
                && event.metadata().target() != "service"
            {
                super::keep_manager_line(super::cut(message), *event.metadata().level());
            }
        };
        // A value whose formatting logs (re-entering on this thread), or a
        // line logged while the thread is torn down, gets buffers of its own.
        let done = BUFFERS.try_with(|buffers| match buffers.try_borrow_mut() {
            Ok(mut buffers) => {
                let (line, message) = &mut *buffers;
                handle(line, message);
                // One very long line does not keep its buffers.
                if line.capacity() > super::HELD_MAX {
                    *line = String::new();
                    *message = String::new();
                }
                true
            }
            Err(_) => false,
        });
        if done != Ok(true) {
            handle(&mut String::new(), &mut String::new());
        }
    }
}

/// Writes an event's fields as the `fmt` layer's default visitor does:
/// separated by spaces, the message first as it was given, the others as
/// `name=value` (`Debug`).
struct Fields<'a> {
    line: &'a mut String,
    message: &'a mut String,
    ansi: bool,
    empty: bool,
    has_message: bool,
}

impl Fields<'_> {
    fn pad(&mut self) {
        if self.empty {
            self.empty = false;
        } else {
            self.line.push(' ');
        }
    }

    fn name(&mut self, name: &str) {
        let name = name.strip_prefix("r#").unwrap_or(name);
        if self.ansi {
            let _ = write!(self.line, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m");
        } else {
            self.line.push_str(name);
            self.line.push('=');
        }
    }

    /// The message, kept as given and written with its control characters
    /// escaped (as the `fmt` layer guards against terminal injection).
    fn message(&mut self) {
        self.pad();
        self.has_message = true;
        escape_into(self.line, self.message);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            self.message();
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = String::new();
        escape_into(&mut text, &value.to_string());
        if let Some(mut source) = value.source() {
            let name = field.name();
            if self.ansi {
                let _ = write!(
                    text,
                    " \x1b[3m{name}\x1b[0m\x1b[3m.sources\x1b[0m\x1b[2m=\x1b[0m["
                );
            } else {
                let _ = write!(text, " {name}.sources=[");
            }
            loop {
                escape_into(&mut text, &source.to_string());
                match source.source() {
                    Some(next) => {
                        text.push_str(", ");
                        source = next;
                    }
                    None => break,
                }
            }
            text.push(']');
        }
        self.record_debug(field, &format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        // Metadata of a record of the `log` crate, already shown.
        if name.starts_with("log.") {
            return;
        }
        if name == "message" {
            let _ = write!(self.message, "{value:?}");
            self.message();
            return;
        }
        self.pad();
        self.name(name);
        let _ = write!(self.line, "{value:?}");
    }
}

/// Appends `text` to `out` with the characters a terminal would act on
/// escaped: ESC, BEL, BS, FF, DEL as `\x1b`..., and the C1 controls as
/// `\u{80}`... (tracing-subscriber's `EscapeGuard`).
fn escape_into(out: &mut String, text: &str) {
    let needs = |c: char| {
        matches!(
            c,
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
        )
    };
    // The usual line has none of them: one scan of its bytes (every
    // character concerned starts with one of these bytes).
    if !text
        .bytes()
        .any(|b| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if !needs(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Writes what tracing-subscriber's `fmt` layer writes into a buffer.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    /// What [`Text::format`] makes of each event, beside it.
    #[derive(Clone, Default)]
    struct Formatted {
        ansi: bool,
        lines: Arc<Mutex<Vec<(String, Duration, String)>>>,
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Formatted {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap();
            let (mut line, mut message) = (String::new(), String::new());
            Text::new(self.ansi).format(event, now, &mut line, &mut message);
            self.lines.lock().unwrap().push((line, now, message));
        }
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "outer \x1b[1mfailure")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn events() {
        let name = "web@1-127.0.0.1:80-127.0.0.1:4242.service";
        tracing::info!("{name}: started /usr/bin/h (pid {})", 4711);
        tracing::info!("{name}: Deactivated successfully.");
        tracing::warn!(plugin = "deny-all", fail_mode = %"closed", "policy plugin failed: {}", "trap");
        tracing::error!(target: "service", "web.service[12]: \x1b[31mred\x07 \u{85}next\u{9f} tab\there é ✓");
        tracing::debug!(plugin = %"p", count = 3, flag = true, ratio = 0.5, r#type = "x", "no warm instance");
        tracing::warn!(unit = "a.service", pid = 9, "line");
        tracing::info!(entry = ?std::path::Path::new("/var/cache/x"), "cannot write");
        let plain = std::io::Error::other("disk \x1b full");
        tracing::warn!(
            error = &plain as &(dyn std::error::Error + 'static),
            "plain error"
        );
        let nested = Outer(std::io::Error::other("inner \u{9b} cause"));
        tracing::warn!(
            error = &nested as &(dyn std::error::Error + 'static),
            "nested error"
        );
        tracing::trace!("trace {}", "line");
        tracing::info!(only = 1);
        tracing::info!("");
    }

    /// Every event formatted by `fmt` (with `Clock`) and by [`Text`]: the
    /// same bytes, the timestamps aside (each read the clock itself).
    fn compare(ansi: bool) {
        let sink = Sink::default();
        let ours = Formatted {
            ansi,
            ..Formatted::default()
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_target(false)
            .with_timer(super::super::Clock)
            .with_ansi(ansi)
            .with_writer(sink.clone())
            .finish()
            .with(ours.clone());
        tracing::subscriber::with_default(subscriber, events);
        let theirs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let theirs: Vec<&str> = theirs.split_inclusive('\n').collect();
        let ours = ours.lines.lock().unwrap();
        assert_eq!(theirs.len(), 12);
        assert_eq!(ours.len(), theirs.len());
        // The timestamp's length: `2026-12-03T02:22:11.284016Z`.
        let stamp = 27 + if ansi { 4 } else { 0 };
        for ((line, _, _), fmt_line) in ours.iter().zip(&theirs) {
            assert_eq!(&line[stamp..], &fmt_line[stamp..], "ansi {ansi}");
            assert_eq!(line.len(), fmt_line.len());
        }
        // The timestamp is the time the line was made at.
        let (line, now, _) = &ours[0];
        let mut expected = String::new();
        let _ = super::super::write_time(&mut expected, *now);
        let at = if ansi { 4 } else { 0 };
        assert_eq!(&line[at..at + 27], expected);
        // The message kept for the rings is as given, not escaped.
        assert_eq!(
            ours[3].2,
            "web.service[12]: \x1b[31mred\x07 \u{85}next\u{9f} tab\there é ✓"
        );
        assert_eq!(ours[5].2, "line");
        assert_eq!(ours[10].2, "");
    }

    #[test]
    fn lines_are_the_bytes_the_fmt_layer_writes() {
        compare(false);
    }

    #[test]
    fn lines_on_a_terminal_are_the_bytes_the_fmt_layer_writes() {
        compare(true);
    }

    #[test]
    fn escapes_only_what_a_terminal_acts_on() {
        let mut out = String::new();
        escape_into(&mut out, "a\x1bb\x07\x08\x0c\x7f\u{80}\u{9f}\u{a0}é\t\n");
        assert_eq!(out, "a\\x1bb\\x07\\x08\\x0c\\x7f\\u{80}\\u{9f}\u{a0}é\t\n");
    }
}
