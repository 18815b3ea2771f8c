//! Config and delta directories, as libuci uses `/etc/config` and
//! `/tmp/.uci`: the only module of this crate that touches files.
//!
//! Loading a package reads `CONFDIR/NAME`, then replays the delta files of
//! every extra delta directory (`uci -p`) in order, then the save directory
//! (`uci -P` or the default `/tmp/.uci`). Changes are appended to the save
//! directory; `commit` rewrites the config file (write to a temporary file,
//! then rename) and empties the save directory's delta file.

use crate::delta::{parse_deltas, Delta};
use crate::export::commit_text;
use crate::model::{valid_package_name, Package};
use crate::ops;
use crate::parse::{parse, Mode, ParseError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("config '{name}' not found in {dir}: create the file first (an empty file is a valid config)")]
    NotFound { name: String, dir: PathBuf },
    #[error("'{0}' is not a valid config name (letters, digits, '_' and '-')")]
    BadName(String),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where configs and staged changes live.
#[derive(Debug, Clone)]
pub struct Store {
    pub confdir: PathBuf,
    /// Extra delta directories replayed before the save directory (`-p`).
    pub delta_paths: Vec<PathBuf>,
    /// Where new changes are staged and what `commit` flushes.
    pub savedir: PathBuf,
    pub mode: Mode,
}

/// A package with its staged changes applied.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub package: Package,
    /// Lines of the config file skipped in lenient mode.
    pub skipped: Vec<ParseError>,
    /// The staged changes that applied, in replay order (`uci changes`).
    pub changes: Vec<Delta>,
    /// How many of them came from the save directory.
    pub saved: usize,
}

impl Store {
    pub fn new(confdir: impl Into<PathBuf>) -> Self {
        Store {
            confdir: confdir.into(),
            delta_paths: Vec::new(),
            savedir: PathBuf::from("/tmp/.uci"),
            mode: Mode::Strict,
        }
    }

    /// `uci -p DIR`: replay DIR's deltas too (ignored if already listed).
    pub fn add_delta_path(&mut self, dir: impl Into<PathBuf>) {
        let dir = dir.into();
        if dir != self.savedir && !self.delta_paths.contains(&dir) {
            self.delta_paths.push(dir);
        }
    }

    /// `uci -P DIR`: the old save directory becomes a delta path.
    pub fn set_savedir(&mut self, dir: impl Into<PathBuf>) {
        let old = std::mem::replace(&mut self.savedir, dir.into());
        self.add_delta_path(old);
        let savedir = self.savedir.clone();
        self.delta_paths.retain(|d| d != &savedir);
    }

    pub fn config_path(&self, name: &str) -> PathBuf {
        self.confdir.join(name)
    }

    /// Config names in the config directory, sorted (libuci's glob order).
    pub fn list_configs(&self) -> Result<Vec<String>, StoreError> {
        let dir = std::fs::read_dir(&self.confdir).map_err(io(&self.confdir))?;
        let mut names: Vec<String> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.contains('.') && valid_package_name(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The config file as committed, without staged changes.
    pub fn load_committed(&self, name: &str) -> Result<Package, StoreError> {
        self.read_config(name).map(|(p, _)| p)
    }

    fn read_config(&self, name: &str) -> Result<(Package, Vec<ParseError>), StoreError> {
        if !valid_package_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        let path = self.config_path(name);
        if !path.is_file() {
            return Err(StoreError::NotFound {
                name: name.to_string(),
                dir: self.confdir.clone(),
            });
        }
        let text = std::fs::read(&path).map_err(io(&path))?;
        let label = path.display().to_string();
        let parsed = parse(&text, name, &label, self.mode)?;
        Ok((parsed.package, parsed.skipped))
    }

    /// The config with every staged change replayed.
    pub fn load(&self, name: &str) -> Result<Loaded, StoreError> {
        let (mut package, skipped) = self.read_config(name)?;
        let mut changes = Vec::new();
        let mut saved = 0;
        for dir in self
            .delta_paths
            .iter()
            .chain(std::iter::once(&self.savedir))
        {
            let deltas = self.read_deltas(dir, name)?;
            for d in deltas {
                if ops::apply(&mut package, &d).is_ok() {
                    changes.push(d);
                    if dir == &self.savedir {
                        saved += 1;
                    }
                }
            }
        }
        Ok(Loaded {
            package,
            skipped,
            changes,
            saved,
        })
    }

    fn read_deltas(&self, dir: &Path, name: &str) -> Result<Vec<Delta>, StoreError> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(parse_deltas(&bytes, name).0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Take the package's lock (`SAVEDIR/.NAME.lock`, flock) until the
    /// returned file is dropped: staging and committing never interleave.
    fn lock(&self, name: &str) -> Result<std::fs::File, StoreError> {
        std::fs::create_dir_all(&self.savedir).map_err(io(&self.savedir))?;
        let path = self.savedir.join(format!(".{name}.lock"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        // SAFETY: flock on a descriptor we own; released when `f` closes.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
        if rc != 0 {
            return Err(io(&path)(std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    /// Stage changes: append them to `SAVEDIR/NAME`.
    pub fn save(&self, name: &str, deltas: &[Delta]) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let _lock = self.lock(name)?;
        self.append(name, deltas)
    }

    fn append(&self, name: &str, deltas: &[Delta]) -> Result<(), StoreError> {
        let path = self.savedir.join(name);
        let mut text = String::new();
        for d in deltas {
            text.push_str(&d.to_line(name));
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(text.as_bytes()).map_err(io(&path))
    }

    /// `uci commit NAME`: write the config with all staged changes and
    /// empty the save directory's delta file. Returns false if nothing was
    /// staged in the save directory (the file is then left untouched).
    pub fn commit(&self, name: &str) -> Result<bool, StoreError> {
        let _lock = self.lock(name)?;
        let loaded = self.load(name)?;
        if loaded.saved == 0 {
            return Ok(false);
        }
        self.write_config(&loaded.package)?;
        let delta = self.savedir.join(name);
        std::fs::write(&delta, b"").map_err(io(&delta))?;
        Ok(true)
    }

    /// Write a package to `CONFDIR/NAME` atomically, in commit format.
    pub fn write_config(&self, p: &Package) -> Result<(), StoreError> {
        let path = self.config_path(&p.name);
        let tmp = self
            .confdir
            .join(format!(".{}.uci-{}", p.name, std::process::id()));
        std::fs::write(&tmp, commit_text(p)).map_err(io(&tmp))?;
        if let Ok(meta) = std::fs::metadata(&path) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// `uci revert NAME[.SECTION[.OPTION]]`: drop matching staged changes
    /// from the save directory.
    pub fn revert(
        &self,
        name: &str,
        section: Option<&str>,
        option: Option<&str>,
    ) -> Result<(), StoreError> {
        let path = self.savedir.join(name);
        let deltas = self.read_deltas(&self.savedir, name)?;
        if !path.exists() {
            return Ok(());
        }
        let keep: Vec<Delta> = deltas
            .into_iter()
            .filter(|d| {
                let sec = section.is_some_and(|s| s != d.section);
                let opt = option.is_some_and(|o| d.option.as_deref() != Some(o));
                sec || opt
            })
            .collect();
        std::fs::write(&path, b"").map_err(io(&path))?;
        if keep.is_empty() {
            return Ok(());
        }
        self.append(name, &keep)
    }
}
