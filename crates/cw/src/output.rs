//! Reading JSON inputs with precise errors, and writing JSON outputs deterministically.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CliError;

/// Renders `value` as pretty JSON with sorted keys and a trailing newline.
pub(crate) fn to_json_text<T: Serialize>(value: &T) -> String {
    // Going through `Value` sorts object keys (serde_json's map is ordered by key).
    let value = serde_json::to_value(value).unwrap_or_else(|e| serde_json::Value::String(e.to_string()));
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes to stdout; a closed pipe (e.g. `| head`) ends output quietly instead of panicking.
pub(crate) fn emit(text: &str) {
    emit_all(&[text]);
}

/// [`emit`] of `parts`, one after the other.
pub(crate) fn emit_all(parts: &[&str]) {
    let mut stdout = std::io::stdout().lock();
    let _ = parts.iter().try_for_each(|part| stdout.write_all(part.as_bytes())).and_then(|()| stdout.flush());
}

pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read { path: path.to_path_buf(), source })
}

/// Parses a JSON file into `T`; errors name the file, line, column and field path.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let bytes = read_bytes(path)?;
    parse_json(path, &bytes)
}

pub(crate) fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, CliError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde_json appends " at line L column C"; the prefix already says where.
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        CliError::Parse {
            path: path.to_path_buf(),
            line: inner.line(),
            column: inner.column(),
            message: if field == "." { message } else { format!("field `{field}`: {message}") },
        }
    })?;
    deserializer.end().map_err(|e| CliError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: "unexpected content after the JSON document".to_owned(),
    })?;
    Ok(value)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::Write { path: path.to_path_buf(), source })
}
