//! Shared by the CLI's tests (included with `#[path]`; not a test target of its own).

/// A command line as one string, split on spaces outside single quotes (`'a b'` is one word,
/// `''` an empty one), so each table row stays on one line.
pub fn words(text: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    for character in text.chars() {
        match character {
            '\'' => (quoted, started) = (!quoted, true),
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            other => {
                word.push(other);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}
