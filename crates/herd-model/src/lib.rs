//! Objects, attribute types and values, and the query language of herd's
//! inventory (serveradmin's data model).
//!
//! Central types: [`Query`] (one AST for the text syntax, [`parse_query`],
//! and serveradmin's JSON wire format, via serde), [`Filter`], [`Value`],
//! [`Object`], [`Schema`] and [`Commit`]. [`compile`] checks a query against
//! a schema and types its literals; [`validate`] holds serveradmin's
//! per-object validation rules.
//!
//! This crate does no I/O: it knows nothing about SQL, HTTP or libvirt.

pub mod commit;
pub mod compile;
pub mod query;
pub mod relations;
pub mod schema;
pub mod text;
pub mod validate;
pub mod value;

pub use commit::{
    AttributeChange, AttributeDiff, Change, ChangeKind, Commit, CommitId, CommitRecord,
    DatetimeJson, ObjectChange,
};
pub use compile::{compile, CompiledQuery, MatchContext, Matcher, QueryError};
pub use query::{Filter, Query, Restrict, FILTER_FUNCTIONS, MAX_FILTER_DEPTH};
pub use schema::{
    Attribute, AttributeType, InetFamily, IpAddrType, Schema, SchemaChange, Servertype,
    ServertypeAttribute, SPECIAL_ATTRIBUTES,
};
pub use text::{parse_query, SyntaxError};
pub use value::{Date, Datetime, Mac, Number, Object, ObjectId, Value};
