//! OpenWrt UCI configuration: a parser and serializer with libuci's exact
//! rules, a semantic diff, `uci batch` scripts and a drop-in for OpenWrt's
//! `uci` command line. herd-uci knows nothing about firewalls: the only
//! domain knowledge here is one table of which options are lists, booleans,
//! enums or section keys in which package ([`schema`]).
//!
//! The central type is [`Package`]: ordered [`Section`]s (type, name or
//! libuci's `cfgXXYYYY` id for anonymous ones), each holding ordered
//! [`UciOption`]s whose [`Value`] is a single string or a list.
//!
//! Public API (stable; herd-firewall builds on it):
//!
//! - [`parse()`] / [`parse_str`] / [`parse_import`]: text → [`Package`], strict
//!   ([`Mode::Strict`], first error with file, line, column) or lenient
//!   ([`Mode::Lenient`], bad lines skipped and returned).
//! - [`export()`] (`uci export`), [`commit_text`] (the file `uci commit` writes),
//!   [`show()`] (`uci show`), [`quote`].
//! - [`Package::add_anonymous`], [`Package::add_named`], [`Section::set`],
//!   [`Section::set_list`], [`Section::add_list`]: build configs in code.
//! - [`Package::resolve`]: `@type[i]` / `@type[-1]` / name → section index.
//! - [`diff()`] + [`render_diff`]: the semantic diff (serde-serializable).
//! - [`batch_script`]: the `uci batch` script from one version to another;
//!   [`run_script`]: run such a script in memory with libuci's semantics.
//! - [`edit()`] / [`edit_with_script`]: format-preserving edits of
//!   hand-written files.
//! - [`ops`]: libuci's `set`/`add_list`/`delete`... returning staged
//!   [`Delta`]s; [`store::Store`]: config and delta directories;
//!   [`cli::main`]: `uci ARGS...`.
//!
//! Pure decisions, thin effects: only [`store`] and [`cli`] touch files;
//! the parser, serializer, diff, script generator and editor are pure
//! functions of their inputs.

pub mod cli;
pub mod delta;
pub mod diff;
pub mod edit;
pub mod export;
pub mod model;
pub mod ops;
pub mod parse;
pub mod schema;
pub mod script;
pub mod store;
mod tokenize;

pub use delta::{Cmd, Delta};
pub use diff::{
    diff, render as render_diff, Diff, OptionChange, OptionValue, SectionChange, SectionId,
};
pub use edit::{edit, edit_with_script, EditError, Edited};
pub use export::{
    commit_text, export, export_with, format_value, quote, show, ExportOptions, ShowOptions,
};
pub use model::{
    anonymous_id, valid_name, valid_package_name, valid_type, Package, Section, UciOption, Value,
};
pub use ops::{OpError, Ptr};
pub use parse::{parse, parse_import, parse_str, Mode, ParseError, Parsed};
pub use script::{batch_script, run_script, ScriptError};
pub use store::{Loaded, Store, StoreError};
