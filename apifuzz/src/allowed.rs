//! Panics that are documented preconditions, not bugs: hot-path accessors
//! whose docs say "Panics if ...". Each entry names the file, the start of
//! the panic's message (stable when lines move) and the doc line it relies
//! on; a test checks that the doc line is still in the source. Every other
//! panic counts as a failure.

/// One documented precondition.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// The public call.
    pub api: &'static str,
    /// The source file the panic is raised in, relative to the workspace.
    pub file: &'static str,
    /// How the panic's message starts.
    pub message_prefix: &'static str,
    /// The doc line that states the precondition, verbatim.
    pub doc: &'static str,
}

/// The documented preconditions this harness may trip.
pub const ALLOWED: &[Allowed] = &[
    Allowed {
        api: "Matrix::row / select_rows / iter_rows / Split::select",
        file: "datasets/src/matrix.rs",
        message_prefix: "Matrix::row: row ",
        doc: "/// If `i >= rows`.",
    },
    Allowed {
        api: "Mlp::tensor / tensor_mut",
        file: "src/nn.rs",
        message_prefix: "Mlp::tensor: ",
        doc: "/// Panics if `role`'s layer is past the model's layers (a hot-path",
    },
    Allowed {
        api: "Mlp::role",
        file: "src/nn.rs",
        message_prefix: "tensor ",
        doc: "/// Panics if `index >= tensor_count()`.",
    },
];

/// The entry that allows a panic at `site` (`file:line`) with `message`.
pub fn allowed(site: &str, message: &str) -> Option<&'static Allowed> {
    let file = site.split(':').next().unwrap_or(site);
    ALLOWED
        .iter()
        .find(|a| a.file == file && message.starts_with(a.message_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sources the entries point into, as compiled.
    fn source(file: &str) -> &'static str {
        match file {
            "datasets/src/matrix.rs" => include_str!("../../datasets/src/matrix.rs"),
            "src/nn.rs" => include_str!("../../src/nn.rs"),
            other => panic!("no source registered for {other}"),
        }
    }

    #[test]
    fn every_allowed_panic_is_still_documented_in_its_file() {
        for a in ALLOWED {
            assert!(
                source(a.file).contains(a.doc),
                "{}: doc line {:?} is gone",
                a.api,
                a.doc
            );
        }
    }

    #[test]
    fn only_the_named_file_and_message_are_allowed() {
        assert!(allowed("datasets/src/matrix.rs:78", "Matrix::row: row 9 of 3").is_some());
        assert!(allowed("datasets/src/matrix.rs:80", "index out of bounds").is_none());
        assert!(allowed("src/nn.rs:294", "index out of bounds: the len is 2 but the index is 7").is_none());
    }
}
