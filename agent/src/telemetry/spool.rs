//! A sink's durable store-and-forward spool: append-only segment files of framed records, an
//! ack cursor persisted atomically, and a disk budget enforced by dropping the oldest segment.
//!
//! Record: `len u32 LE | crc32 u32 LE | body` where body = `points u32 LE | timestamp_ns i64 LE
//! | data` and the CRC covers the body. `append` fsyncs before it returns, so whatever it
//! accepted survives a power cut. The ack cursor (segment id and offset of the first
//! unacknowledged record) is written to `ack.tmp`, fsynced and renamed over `ack`: a kill -9
//! at any instant leaves either the old or the new cursor, so at most the unacknowledged batch
//! is sent again and nothing spooled is lost. Opening truncates a torn tail (a crash inside an
//! append, which was never acknowledged to the caller).
//!
//! Memory stays bounded whatever the backlog: only per-segment sizes are kept; records are read
//! from disk one at a time, oldest first.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

const FRAME: usize = 8;
const BODY_PREFIX: usize = 12;
/// Largest record accepted; bigger lengths read back mean corruption.
pub const MAX_RECORD: usize = 64 << 20;

/// A position in the spool: segment id and byte offset within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    /// Segment id.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Record {
    /// Points the record holds.
    pub points: u32,
    /// Timestamp of its points (ns since the epoch).
    pub timestamp_ns: i64,
    /// Encoded payload.
    pub data: Vec<u8>,
    /// Cursor just past the record: acknowledging it acknowledges everything before.
    pub end: Cursor,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
}

/// A per-sink spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    reader: Option<(u64, File)>,
    ack: Cursor,
    read: Cursor,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded by `max_bytes` on disk.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut ids: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut segments = VecDeque::new();
        for id in ids {
            let bytes = fs::metadata(segment_path(dir, id))?.len();
            segments.push_back(Segment { id, bytes });
        }
        let ack = fs::read_to_string(dir.join("ack"))
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|n| n.parse::<u64>());
                Some(Cursor {
                    segment: it.next()?.ok()?,
                    offset: it.next()?.ok()?,
                })
            })
            .unwrap_or_default();
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            // Four segments per budget: dropping one frees a quarter, not everything.
            segment_bytes: (max_bytes / 4).max(16 * 1024),
            segments,
            writer: None,
            reader: None,
            ack,
            read: ack,
        };
        spool.repair_tail()?;
        spool.normalize_ack();
        // Segments wholly before the cursor were acknowledged; a crash may have left them.
        while spool
            .segments
            .front()
            .is_some_and(|s| s.id < spool.ack.segment)
        {
            spool.remove_oldest()?;
        }
        spool.read = spool.ack;
        Ok(spool)
    }

    /// Truncates a torn record at the end of the newest segment.
    fn repair_tail(&mut self) -> io::Result<()> {
        let Some(last) = self.segments.back_mut() else {
            return Ok(());
        };
        let path = segment_path(&self.dir, last.id);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut off = 0u64;
        while let Some(len) = read_frame(&file, off, last.bytes)? {
            off += (FRAME + len) as u64;
        }
        if off != last.bytes {
            tracing::warn!(
                file = %path.display(),
                valid = off,
                size = last.bytes,
                "spool: truncating a torn record"
            );
            file.set_len(off)?;
            file.sync_all()?;
            last.bytes = off;
        }
        Ok(())
    }

    /// Moves a cursor that points at or past the end of an older segment, or before the first
    /// segment, to the start of the next existing segment.
    fn normalize(&self, mut c: Cursor) -> Cursor {
        let Some(first) = self.segments.front() else {
            return c;
        };
        if c.segment < first.id {
            c = Cursor {
                segment: first.id,
                offset: 0,
            };
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.id == c.segment && c.offset >= s.bytes {
                if let Some(next) = self.segments.get(i + 1) {
                    c = Cursor {
                        segment: next.id,
                        offset: 0,
                    };
                }
            }
        }
        c
    }

    fn normalize_ack(&mut self) {
        self.ack = self.normalize(self.ack);
    }

    fn remove_oldest(&mut self) -> io::Result<()> {
        if let Some(s) = self.segments.pop_front() {
            if self.reader.as_ref().is_some_and(|(id, _)| *id == s.id) {
                self.reader = None;
            }
            match fs::remove_file(segment_path(&self.dir, s.id)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Appends records `(points, timestamp_ns, data)` and fsyncs. Returns how many unacked
    /// points were dropped (oldest first) to stay within the disk budget.
    pub fn append(&mut self, records: &[(u32, i64, &[u8])]) -> io::Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let need_new = match self.segments.back() {
            None => true,
            Some(s) => s.bytes >= self.segment_bytes || self.writer.is_none() && s.bytes > 0,
        };
        if need_new || self.writer.is_none() {
            self.roll(need_new)?;
        }
        let mut buf = Vec::new();
        for (points, ts, data) in records {
            let len = BODY_PREFIX + data.len();
            if len > MAX_RECORD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "record larger than the spool's limit",
                ));
            }
            let start = buf.len();
            buf.extend_from_slice(&(len as u32).to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&points.to_le_bytes());
            buf.extend_from_slice(&ts.to_le_bytes());
            buf.extend_from_slice(data);
            let crc = crc32fast::hash(&buf[start + FRAME..]);
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let (Some(w), Some(seg)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(io::Error::other("spool has no open segment"));
        };
        if let Err(e) = w.write_all(&buf).and_then(|()| w.sync_data()) {
            // A partial write would tear the segment: cut it back and start a new one next time.
            let _ = w.set_len(seg.bytes);
            self.writer = None;
            return Err(e);
        }
        seg.bytes += buf.len() as u64;
        self.enforce_budget()
    }

    /// Starts a new segment (when `new`) or reopens the newest for appending.
    fn roll(&mut self, new: bool) -> io::Result<()> {
        let id = match (new, self.segments.back()) {
            (true, Some(s)) => s.id + 1,
            (true, None) => self.ack.segment.max(1),
            (false, Some(s)) => s.id,
            (false, None) => 1,
        };
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if new || self.segments.is_empty() {
            sync_dir(&self.dir)?;
            self.segments.push_back(Segment { id, bytes: 0 });
        }
        self.writer = Some(file);
        // A cursor at the end of the previous newest segment now moves on to this one.
        self.ack = self.normalize(self.ack);
        self.read = self.normalize(self.read);
        Ok(())
    }

    /// Drops the oldest segments while over budget; returns the unacked points dropped.
    fn enforce_budget(&mut self) -> io::Result<u64> {
        let mut dropped = 0u64;
        while self.total_bytes() > self.max_bytes && self.segments.len() > 1 {
            let Some(first) = self.segments.front() else {
                break;
            };
            let (id, size) = (first.id, first.bytes);
            let from = if self.ack.segment == id {
                self.ack.offset
            } else if self.ack.segment > id {
                size
            } else {
                0
            };
            dropped += self.count_points(id, from, size)?;
            self.remove_oldest()?;
            self.ack = self.normalize(self.ack);
            self.read = self.normalize(self.read);
            self.persist_ack()?;
        }
        Ok(dropped)
    }

    fn count_points(&self, id: u64, mut off: u64, size: u64) -> io::Result<u64> {
        let file = File::open(segment_path(&self.dir, id))?;
        let mut points = 0u64;
        while let Some(len) = read_frame(&file, off, size)? {
            let mut p = [0u8; 4];
            file.read_exact_at(&mut p, off + FRAME as u64)?;
            points += u64::from(u32::from_le_bytes(p));
            off += (FRAME + len) as u64;
        }
        Ok(points)
    }

    /// Bytes on disk not yet acknowledged.
    pub fn backlog_bytes(&self) -> u64 {
        self.total_bytes().saturating_sub(
            self.segments
                .front()
                .filter(|s| s.id == self.ack.segment)
                .map_or(0, |_| self.ack.offset),
        )
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Timestamp of the oldest unacknowledged record.
    pub fn oldest_timestamp(&self) -> Option<i64> {
        let c = self.normalize(self.ack);
        let seg = self.segments.iter().find(|s| s.id == c.segment)?;
        let file = File::open(segment_path(&self.dir, seg.id)).ok()?;
        read_frame(&file, c.offset, seg.bytes).ok()??;
        let mut ts = [0u8; 8];
        file.read_exact_at(&mut ts, c.offset + FRAME as u64 + 4)
            .ok()?;
        Some(i64::from_le_bytes(ts))
    }

    /// The next record after the read cursor, oldest first; `None` when caught up.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            self.read = self.normalize(self.read);
            let Some(seg) = self.segments.iter().find(|s| s.id == self.read.segment) else {
                return Ok(None);
            };
            let (id, size) = (seg.id, seg.bytes);
            let is_last = self.segments.back().is_some_and(|s| s.id == id);
            if self.read.offset >= size {
                return Ok(None);
            }
            if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
                self.reader = Some((id, File::open(segment_path(&self.dir, id))?));
            }
            let Some((_, file)) = self.reader.as_ref() else {
                return Ok(None);
            };
            match read_frame(file, self.read.offset, size)? {
                Some(len) => {
                    let mut body = vec![0u8; len];
                    file.read_exact_at(&mut body, self.read.offset + FRAME as u64)?;
                    let points = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&body[4..12]);
                    body.drain(..BODY_PREFIX);
                    self.read.offset += (FRAME + len) as u64;
                    return Ok(Some(Record {
                        points,
                        timestamp_ns: i64::from_le_bytes(ts),
                        data: body,
                        end: self.read,
                    }));
                }
                None if is_last => return Ok(None),
                None => {
                    // Corruption inside an older segment: skip the rest of it.
                    tracing::warn!(
                        segment = id,
                        offset = self.read.offset,
                        "spool: corrupt record, skipping the rest of the segment"
                    );
                    self.read.offset = size;
                }
            }
        }
    }

    /// Whether records wait after the read cursor.
    pub fn has_unread(&self) -> bool {
        let c = self.normalize(self.read);
        self.segments
            .iter()
            .find(|s| s.id == c.segment)
            .is_some_and(|s| c.offset < s.bytes)
    }

    /// Re-reads from the ack cursor (after a lost connection: in-flight records go again).
    pub fn rewind(&mut self) {
        self.read = self.ack;
    }

    /// Acknowledges every record before `upto`, persists the cursor, and deletes segments
    /// that are wholly acknowledged.
    pub fn ack(&mut self, upto: Cursor) -> io::Result<()> {
        let upto = self.normalize(upto);
        if upto <= self.ack {
            return Ok(());
        }
        self.ack = upto;
        if self.read < self.ack {
            self.read = self.ack;
        }
        self.persist_ack()?;
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| s.id < self.ack.segment)
        {
            self.remove_oldest()?;
        }
        Ok(())
    }

    fn persist_ack(&self) -> io::Result<()> {
        let tmp = self.dir.join("ack.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{} {}\n", self.ack.segment, self.ack.offset).as_bytes())?;
        f.sync_data()?;
        fs::rename(&tmp, self.dir.join("ack"))
    }
}

/// The body length of a valid record at `off`, or `None` at the end or at a torn or corrupt
/// record.
fn read_frame(file: &File, off: u64, size: u64) -> io::Result<Option<usize>> {
    if off + FRAME as u64 > size {
        return Ok(None);
    }
    let mut hdr = [0u8; FRAME];
    file.read_exact_at(&mut hdr, off)?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
    let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    if !(BODY_PREFIX..=MAX_RECORD).contains(&len) || off + (FRAME + len) as u64 > size {
        return Ok(None);
    }
    let mut body = vec![0u8; len];
    file.read_exact_at(&mut body, off + FRAME as u64)?;
    Ok((crc32fast::hash(&body) == crc).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Spool) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(r) = s.next_record().expect("read") {
            out.push((r.timestamp_ns, r.data));
        }
        out
    }

    #[test]
    fn append_read_ack_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.append(&[(1, 10, b"a"), (2, 20, b"bb")]).expect("append");
        let a = s.next_record().expect("read").expect("a");
        assert_eq!((a.points, a.timestamp_ns, &a.data[..]), (1, 10, &b"a"[..]));
        s.ack(a.end).expect("ack");
        let b = s.next_record().expect("read").expect("b");
        assert_eq!(b.data, b"bb");
        assert!(s.next_record().expect("read").is_none());
        assert_eq!(s.oldest_timestamp(), Some(20));
        drop(s);
        // b was read but never acknowledged: it comes back after a restart.
        let mut s = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(drain(&mut s), vec![(20, b"bb".to_vec())]);
        s.rewind();
        let b = s.next_record().expect("read").expect("b again");
        s.ack(b.end).expect("ack");
        assert_eq!(s.backlog_bytes(), 0);
        assert_eq!(s.oldest_timestamp(), None);
        s.append(&[(1, 30, b"c")]).expect("append");
        assert_eq!(drain(&mut s), vec![(30, b"c".to_vec())]);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.append(&[(1, 1, b"one")]).expect("append");
        drop(s);
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).expect("segment");
        f.write_all(&[40, 0, 0, 0, 1, 2]).expect("torn write");
        drop(f);
        let mut s = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(drain(&mut s), vec![(1, b"one".to_vec())]);
        s.append(&[(1, 2, b"two")]).expect("append after repair");
        assert_eq!(drain(&mut s), vec![(2, b"two".to_vec())]);
    }

    #[test]
    fn a_crash_at_any_byte_keeps_every_whole_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.append(&[(1, 1, b"first")]).expect("append");
        s.append(&[(1, 2, b"second"), (1, 3, b"third")])
            .expect("append");
        drop(s);
        let full = fs::read(segment_path(dir.path(), 1)).expect("segment");
        let ends = [FRAME + 12 + 5, 2 * (FRAME + 12) + 11, 3 * (FRAME + 12) + 16];
        for cut in 0..=full.len() {
            let d = tempfile::tempdir().expect("tempdir");
            fs::write(segment_path(d.path(), 1), &full[..cut]).expect("write torn copy");
            let mut s = Spool::open(d.path(), 1 << 20).expect("open torn copy");
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let got: Vec<i64> = drain(&mut s).iter().map(|r| r.0).collect();
            assert_eq!(got, (1..=whole as i64).collect::<Vec<_>>(), "cut at {cut}");
        }
    }

    #[test]
    fn full_spool_drops_oldest_and_counts_points() {
        let dir = tempfile::tempdir().expect("tempdir");
        let max = 64 * 1024;
        let mut s = Spool::open(dir.path(), max).expect("open");
        let data = vec![7u8; 1000];
        let mut dropped = 0;
        for ts in 0..200 {
            dropped += s.append(&[(3, ts, &data)]).expect("append");
        }
        assert!(s.backlog_bytes() <= max, "{} > {max}", s.backlog_bytes());
        let left = drain(&mut s);
        assert_eq!(dropped, 3 * (200 - left.len() as u64));
        // What is left is the newest, in order.
        let ts: Vec<i64> = left.iter().map(|r| r.0).collect();
        let first = ts[0];
        assert_eq!(ts, (first..200).collect::<Vec<_>>());
        // Files on disk stay within budget too.
        let on_disk: u64 = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .sum();
        assert!(on_disk <= max + 64, "{on_disk}");
    }

    #[test]
    fn acked_segments_are_deleted_and_reopen_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path(), 64 * 1024).expect("open");
        let data = vec![1u8; 5000];
        for ts in 0..10 {
            s.append(&[(1, ts, &data)]).expect("append");
        }
        let mut last = None;
        for _ in 0..7 {
            last = s.next_record().expect("read");
        }
        s.ack(last.expect("record").end).expect("ack");
        let segs = fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .expect("entry")
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert!(segs <= 2, "{segs} segments left");
        drop(s);
        let mut s = Spool::open(dir.path(), 64 * 1024).expect("reopen");
        let ts: Vec<i64> = drain(&mut s).iter().map(|r| r.0).collect();
        assert_eq!(ts, [7, 8, 9]);
    }
}
