//! A small blocking connection pool: at most `max` connections, idle ones
//! kept for reuse, broken ones dropped. Each connection carries its own
//! cache of prepared statements ([`Statements`]), so a statement is parsed
//! and described once per connection instead of once per use (with
//! `client.query(&str, ..)` every call costs an extra round trip).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex};

use postgres::{Client, Config, GenericClient, NoTls, Statement};

/// Distinct statement texts kept per connection; the cache starts over
/// when full (generated query texts vary with the query's shape).
const MAX_STATEMENTS: usize = 256;

/// Prepared statements of one connection, keyed by their SQL text.
#[derive(Default)]
pub(crate) struct Statements {
    prepared: HashMap<String, Statement>,
}

impl Statements {
    /// The prepared statement for `sql`, prepared on `c` (a connection
    /// or a transaction of the connection this cache belongs to) the first
    /// time.
    pub fn get(
        &mut self,
        c: &mut impl GenericClient,
        sql: &str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        if self.prepared.len() >= MAX_STATEMENTS {
            self.prepared.clear();
        }
        let s = c.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Forgets every statement (after an error that may mean the
    /// database's tables changed under them).
    pub fn clear(&mut self) {
        self.prepared.clear();
    }
}

/// A connection and its statement cache.
struct Conn {
    client: Client,
    statements: Statements,
}

pub(crate) struct Pool {
    config: Config,
    max: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Conn>,
    open: usize,
}

impl Pool {
    pub fn new(config: Config, max: usize) -> Pool {
        Pool {
            config,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// An idle connection, a new one, or the next one freed.
    pub fn get(&self) -> Result<Pooled<'_>, postgres::Error> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: Statements::default(),
                        }),
                    }),
                    Err(e) => {
                        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        state.open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn put(&self, conn: Conn) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.freed.notify_one();
    }
}

/// A connection borrowed from the pool; returned on drop.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pooled<'_> {
    /// The connection and its statement cache, borrowed separately (a
    /// transaction borrows the connection; the cache is used beside it).
    pub fn parts(&mut self) -> (&mut Client, &mut Statements) {
        let conn = self.conn.as_mut().expect("present until drop");
        (&mut conn.client, &mut conn.statements)
    }
}

impl Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.conn.as_ref().expect("present until drop").client
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.conn.as_mut().expect("present until drop").client
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}
