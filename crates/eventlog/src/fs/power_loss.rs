//! A disk in memory that can lose power, for tests: the engine's counterpart of the
//! fault-injection file systems RocksDB and LevelDB test with.
//!
//! While it runs, [`PowerLossFs`] behaves like a file system seen through the page cache:
//! every read sees every write. Separately it remembers what a power cut would keep:
//!
//! * of each file, the bytes up to its last `sync_data`/`sync_all` (or `truncate`);
//! * of the directory, the names as of its last `sync_dir`; creations, renames and
//!   removals since then are kept in order, as a journaling file system commits them.
//!
//! [`PowerLossFs::cut_power`] (or reaching the operation set with
//! [`PowerLossFs::cut_power_at`]) decides the fate of everything not yet durable, at
//! random but reproducibly from the seed: all of it lost, all of it kept, or a random
//! prefix of it (per file, a prefix of its unsynced bytes, possibly ending inside a
//! record; for the directory, a prefix of its pending name changes). What survives is a
//! new `PowerLossFs`: the machine after the reboot. From the cut on, every call on the
//! old one fails, so the engine that was running can acknowledge nothing more.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FileSystem, ReadableFile, WritableFile};

/// An in-memory [`FileSystem`] that can lose power. See the module documentation.
pub struct PowerLossFs {
    world: Arc<Mutex<World>>,
}

/// What happens to data that was not yet durable when the power went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Everything unsynced is lost.
    Lost,
    /// Everything unsynced made it to the platter after all.
    Kept,
    /// A random prefix of each file's unsynced bytes, and of the pending name changes.
    Prefix,
}

struct Inode {
    data: Vec<u8>,
    /// `data[..durable_len]` survives a power cut. Files are only appended to, and cut
    /// back by a `truncate` that is durable at once, so a length describes it exactly.
    durable_len: usize,
}

#[derive(Debug, Clone)]
enum NameChange {
    Link(PathBuf, u64),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
}

impl NameChange {
    fn dir(&self) -> Option<&Path> {
        match self {
            NameChange::Link(p, _) | NameChange::Rename(p, _) | NameChange::Unlink(p) => p.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            NameChange::Link(p, ino) => {
                names.insert(p.clone(), *ino);
            }
            NameChange::Rename(from, to) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            NameChange::Unlink(p) => {
                names.remove(p);
            }
        }
    }
}

/// The files and directories that survive a power cut.
struct Image {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: Vec<PathBuf>,
    seed: u64,
}

struct World {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// The names the running system sees.
    names: BTreeMap<PathBuf, u64>,
    /// The names a power cut keeps, before `pending` is applied.
    durable_names: BTreeMap<PathBuf, u64>,
    pending: Vec<NameChange>,
    dirs: Vec<PathBuf>,
    locks: HashMap<PathBuf, (bool, usize)>,
    operations: u64,
    cut_at: Option<u64>,
    image: Option<Image>,
    refused_suffix: Option<String>,
    rng: u64,
    fate: Option<Fate>,
}

fn lost_power() -> io::Error {
    io::Error::other("the simulated machine lost power")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

impl World {
    fn empty(seed: u64) -> World {
        World {
            inodes: HashMap::new(),
            next_inode: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            pending: Vec::new(),
            dirs: Vec::new(),
            locks: HashMap::new(),
            operations: 0,
            cut_at: None,
            image: None,
            refused_suffix: None,
            rng: seed | 1,
            fate: None,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: small, and the same sequence for the same seed everywhere.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn random_up_to(&mut self, n: usize) -> usize {
        (self.random() % (n as u64 + 1)) as usize
    }

    fn alive(&self) -> io::Result<()> {
        if self.image.is_some() {
            Err(lost_power())
        } else {
            Ok(())
        }
    }

    /// Counts one operation that changes the disk; cuts the power first if this is the
    /// operation the test chose.
    fn operation(&mut self) -> io::Result<()> {
        self.alive()?;
        self.operations += 1;
        if self.cut_at.is_some_and(|n| self.operations >= n) {
            self.cut();
            return Err(lost_power());
        }
        Ok(())
    }

    fn cut(&mut self) {
        if self.image.is_some() {
            return;
        }
        let fate = self.fate.unwrap_or_else(|| match self.random() % 3 {
            0 => Fate::Lost,
            1 => Fate::Kept,
            _ => Fate::Prefix,
        });
        let kept_changes = match fate {
            Fate::Lost => 0,
            Fate::Kept => self.pending.len(),
            Fate::Prefix => self.random_up_to(self.pending.len()),
        };
        let mut names = self.durable_names.clone();
        for change in &self.pending[..kept_changes] {
            change.apply(&mut names);
        }
        let mut files = BTreeMap::new();
        for (path, ino) in names {
            let Some(inode) = self.inodes.get(&ino) else {
                continue;
            };
            let durable_len = inode.durable_len;
            let unsynced = inode.data.len() - durable_len;
            let kept = match fate {
                Fate::Lost => 0,
                Fate::Kept => unsynced,
                Fate::Prefix => self.random_up_to(unsynced),
            };
            let data = &self.inodes[&ino].data;
            files.insert(path, data[..durable_len + kept].to_vec());
        }
        let seed = self.random();
        self.image = Some(Image {
            files,
            dirs: self.dirs.clone(),
            seed,
        });
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }
}

impl PowerLossFs {
    /// An empty disk. `seed` drives every random choice a power cut makes.
    pub fn new(seed: u64) -> Arc<PowerLossFs> {
        Arc::new(PowerLossFs {
            world: Arc::new(Mutex::new(World::empty(seed))),
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts the power when the `n`-th operation that changes the disk (an append, a sync,
    /// a new, renamed or removed name, a truncation) is attempted; it does not happen.
    pub fn cut_power_at(&self, n: u64) {
        self.world().cut_at = Some(n);
    }

    /// Decides the fate of unsynced data at the next cut instead of drawing it.
    pub fn set_fate(&self, fate: Fate) {
        self.world().fate = Some(fate);
    }

    /// Operations that changed the disk so far.
    pub fn operations(&self) -> u64 {
        self.world().operations
    }

    /// True once the power is gone.
    pub fn is_cut(&self) -> bool {
        self.world().image.is_some()
    }

    /// Makes creating a file whose name ends with `suffix` fail, as a full or broken disk
    /// would: a way to stop background work at a chosen point.
    pub fn refuse_new_files_ending_with(&self, suffix: &str) {
        self.world().refused_suffix = Some(suffix.to_string());
    }

    /// Cuts the power now (unless it is already cut) and returns the disk as the machine
    /// finds it after the reboot.
    pub fn cut_power(&self) -> Arc<PowerLossFs> {
        let mut w = self.world();
        w.cut();
        let Some(image) = w.image.as_ref() else {
            unreachable!("cut() always leaves an image");
        };
        let mut next = World::empty(image.seed);
        next.dirs = image.dirs.clone();
        for (path, data) in &image.files {
            let ino = next.next_inode;
            next.next_inode += 1;
            next.inodes.insert(
                ino,
                Inode {
                    durable_len: data.len(),
                    data: data.clone(),
                },
            );
            next.names.insert(path.clone(), ino);
        }
        next.durable_names = next.names.clone();
        Arc::new(PowerLossFs {
            world: Arc::new(Mutex::new(next)),
        })
    }

    /// The names and contents of every file the running system sees, for inspecting a
    /// disk in a test.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let w = self.world();
        w.names
            .iter()
            .filter_map(|(p, ino)| w.inodes.get(ino).map(|i| (p.clone(), i.data.clone())))
            .collect()
    }
}

impl FileSystem for PowerLossFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut w = self.world();
        w.alive()?;
        // Directories are made durable at once: the engine creates its directory before
        // anything in it, and the simulation is about what happens inside it.
        if !w.dirs.iter().any(|d| d == dir) {
            w.dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let w = self.world();
        w.names.contains_key(path) || w.dirs.iter().any(|d| d == path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let w = self.world();
        w.alive()?;
        if !w.dirs.iter().any(|d| d == dir) {
            return Err(not_found(dir));
        }
        Ok(w.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut w = self.world();
        w.operation()?;
        if w.refused_suffix
            .as_deref()
            .is_some_and(|s| path.to_string_lossy().ends_with(s))
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the simulated disk refuses this file",
            ));
        }
        if w.names.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        if !path.parent().is_some_and(|d| w.dirs.iter().any(|x| x == d)) {
            return Err(not_found(path));
        }
        let ino = w.next_inode;
        w.next_inode += 1;
        w.inodes.insert(
            ino,
            Inode {
                data: Vec::new(),
                durable_len: 0,
            },
        );
        w.names.insert(path.to_path_buf(), ino);
        w.pending.push(NameChange::Link(path.to_path_buf(), ino));
        Ok(Box::new(SimFile {
            world: Arc::clone(&self.world),
            ino,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>> {
        let w = self.world();
        w.alive()?;
        let ino = w.inode_of(path)?;
        Ok(Box::new(SimFile {
            world: Arc::clone(&self.world),
            ino,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let w = self.world();
        w.alive()?;
        let ino = w.inode_of(path)?;
        Ok(w.inodes[&ino].data.clone())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        let ino = w.inode_of(path)?;
        if let Some(inode) = w.inodes.get_mut(&ino) {
            inode.durable_len = inode.data.len();
        }
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        let ino = w.inode_of(path)?;
        if let Some(inode) = w.inodes.get_mut(&ino) {
            inode.data.resize(len as usize, 0);
            inode.durable_len = inode.data.len();
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        let ino = w.inode_of(from)?;
        w.names.remove(from);
        w.names.insert(to.to_path_buf(), ino);
        w.pending
            .push(NameChange::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        w.inode_of(path)?;
        w.names.remove(path);
        w.pending.push(NameChange::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        let pending = std::mem::take(&mut w.pending);
        let (done, rest): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|c| c.dir() == Some(dir));
        for change in &done {
            change.apply(&mut w.durable_names);
        }
        w.pending = rest;
        Ok(())
    }

    fn lock(&self, dir: &Path, exclusive: bool) -> io::Result<Box<dyn Any + Send + Sync>> {
        let mut w = self.world();
        w.alive()?;
        let entry = w.locks.entry(dir.to_path_buf()).or_insert((exclusive, 0));
        if entry.1 > 0 && (entry.0 || exclusive) {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        *entry = (exclusive, entry.1 + 1);
        Ok(Box::new(DirLockGuard {
            world: Arc::clone(&self.world),
            dir: dir.to_path_buf(),
        }))
    }
}

struct DirLockGuard {
    world: Arc<Mutex<World>>,
    dir: PathBuf,
}

impl Drop for DirLockGuard {
    fn drop(&mut self) {
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = w.locks.get_mut(&self.dir) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                w.locks.remove(&self.dir);
            }
        }
    }
}

/// An open file: the inode stays readable after its name is removed, as with a real
/// descriptor.
struct SimFile {
    world: Arc<Mutex<World>>,
    ino: u64,
}

impl SimFile {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        if let Some(inode) = w.inodes.get_mut(&self.ino) {
            inode.durable_len = inode.data.len();
        }
        Ok(())
    }
}

impl WritableFile for SimFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut w = self.world();
        w.operation()?;
        if let Some(inode) = w.inodes.get_mut(&self.ino) {
            inode.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync()
    }
}

impl ReadableFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let w = self.world();
        w.alive()?;
        let data = &w.inodes[&self.ino].data;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(buf.len());
        if end > data.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        let w = self.world();
        w.alive()?;
        Ok(w.inodes[&self.ino].data.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(seed: u64) -> (Arc<PowerLossFs>, PathBuf) {
        let fs = PowerLossFs::new(seed);
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    #[test]
    fn synced_data_and_synced_names_survive_and_nothing_else_when_lost() {
        let (fs, dir) = disk(1);
        fs.set_fate(Fate::Lost);
        let mut a = fs.create(&dir.join("a")).unwrap();
        a.append(b"durable").unwrap();
        a.sync_data().unwrap();
        fs.sync_dir(&dir).unwrap();
        a.append(b" and not").unwrap();
        let mut b = fs.create(&dir.join("b")).unwrap();
        b.append(b"synced, name not").unwrap();
        b.sync_data().unwrap();
        let after = fs.cut_power();
        assert_eq!(after.read(&dir.join("a")).unwrap(), b"durable");
        assert!(!after.exists(&dir.join("b")));
        assert!(a.append(b"x").is_err(), "the old machine is gone");
    }

    #[test]
    fn kept_fate_is_what_a_process_crash_leaves() {
        let (fs, dir) = disk(2);
        fs.set_fate(Fate::Kept);
        let mut a = fs.create(&dir.join("a")).unwrap();
        a.append(b"all of it").unwrap();
        fs.rename(&dir.join("a"), &dir.join("b")).unwrap();
        let after = fs.cut_power();
        assert_eq!(after.read(&dir.join("b")).unwrap(), b"all of it");
        assert!(!after.exists(&dir.join("a")));
    }

    #[test]
    fn a_prefix_keeps_name_changes_in_order_and_a_prefix_of_each_file() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let (fs, dir) = disk(seed);
            fs.set_fate(Fate::Prefix);
            let mut f = fs.create(&dir.join("f")).unwrap();
            f.append(b"0123456789").unwrap();
            fs.create(&dir.join("g")).unwrap();
            fs.create(&dir.join("h")).unwrap();
            let after = fs.cut_power();
            let there = ["f", "g", "h"].map(|n| after.exists(&dir.join(n)));
            // Names come back in the order they were made: a later one never without
            // an earlier one.
            let kept = there.iter().take_while(|t| **t).count();
            assert!(there[kept..].iter().all(|t| !t), "seed {seed}: {there:?}");
            outcomes.insert(kept);
            if there[0] {
                let data = after.read(&dir.join("f")).unwrap();
                assert!(b"0123456789".starts_with(&data), "seed {seed}");
            }
        }
        assert_eq!(
            outcomes.len(),
            4,
            "every prefix length occurs: {outcomes:?}"
        );
    }

    #[test]
    fn the_cut_happens_at_the_chosen_operation() {
        let (fs, dir) = disk(3);
        fs.set_fate(Fate::Kept);
        fs.cut_power_at(3);
        let mut a = fs.create(&dir.join("a")).unwrap(); // 1
        a.append(b"one").unwrap(); // 2
        assert!(a.append(b"two").is_err()); // 3: the power is cut instead
        assert!(fs.is_cut());
        let after = fs.cut_power();
        assert_eq!(after.read(&dir.join("a")).unwrap(), b"one");
    }
}
