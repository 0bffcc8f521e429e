// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import Synchronization
import SystemPackage

/// Random-access plaintext read, write, truncate and size on an encrypted backing file.
///
/// This is what `efs cat`, the companion API and the FUSE mount use. The FEK is unwrapped once when the handle is
/// opened and held (in zeroing storage) until the handle is released. All operations are serialised by one lock.
///
/// Crash consistency (`Documentation/file-format.md` §5.3): data blocks are written before the size record that
/// makes them visible, and a shrink writes the size record first, so after a crash at any point the file reads
/// as its old or its new content at block granularity.
///
/// ```swift
/// let file = try session.open(at: "/data/vault/report.pdf", writable: true)
/// defer { file.close() }
/// try file.write(Array("hello".utf8), at: 0)
/// let bytes = try file.read(at: 0, count: 5)
/// ```
public final class EncryptedFile: Sendable {
    public let path: FilePath?
    let fd: FileDescriptor
    let closesDescriptor: Bool
    public let writable: Bool
    let fek: FileEncryptionKey
    let cipher: ContentCipher
    let header: FileHeader
    let dataOffset: Int64

    struct State: Sendable {
        var info: EncryptedFileInfo
        var sizeRecord: SizeRecord
        /// Length of the stored data region right now.
        var storedLength: UInt64
        /// The size record in memory is newer than on disk (deferred mode).
        var sizeDirty = false
        /// The data region is known to hold nothing past the end implied by the size record.
        var tailClean = false
        /// The largest plaintext size a size record on disk may give after a crash: the one read at open, raised
        /// by every record written, lowered only once a smaller record is durable (a shrink). Stored blocks that
        /// start at or past it are invisible after a crash, so they may be overwritten without a redo record.
        var committedSize: UInt64
        /// The file's length while the redo record of the last in-place overwrite is still in place after that
        /// write completed (see ``EncryptedFile/writeStored(_:_:at:)``); nil when the file ends with the region.
        var completedRecordEnd: Int64?
        /// An in-place overwrite that failed after it began (EIO, ENOSPC): its redo record is intact at the end of
        /// the file, and its bytes must go down before anything writes over that record or cuts it off.
        var interrupted: InterruptedWrite?
        var closed = false
    }
    let state: Mutex<State>

    /// See ``State/interrupted``.
    struct InterruptedWrite {
        var payload: [UInt8]
        /// Data-region offsets: where the payload goes, and the region's length once it is there.
        var target: UInt64
        var regionEnd: UInt64
        /// The file's length with the redo record.
        var recordEnd: Int64
    }
    /// When true, size changes are written at ``sync()`` and ``close()`` instead of with every write.
    let deferSizeUpdates: Bool

    init(path: FilePath?, fd: FileDescriptor, closesDescriptor: Bool, writable: Bool, info: EncryptedFileInfo,
         fek: FileEncryptionKey, deferSizeUpdates: Bool) throws(EFSError) {
        self.path = path
        self.fd = fd
        self.closesDescriptor = closesDescriptor
        self.writable = writable
        self.fek = fek
        self.cipher = ContentCipher(fek)
        self.header = info.header
        self.dataOffset = Int64(info.header.dataOffset)
        self.deferSizeUpdates = deferSizeUpdates
        let rec: SizeRecord
        do {
            rec = try SizeRecord.current(info.sizeRecordBytes[0..<64], info.sizeRecordBytes[64..<128], fek)
        } catch {
            throw EFSError.format(error, path)
        }
        var info = info
        if writable && info.journal != nil {
            // A crash interrupted an overwrite: finish it before anything reads the blocks it covers.
            try info.completePendingWrite(fd, path: path)
        }
        var stored = info.storedDataLength
        if stored > ContentCipher.storedLength(forPlaintextSize: rec.plaintextSize),
            let end = try Self.endBeforeZeroExtension(fd, dataOffset: Int64(info.header.dataOffset), stored: stored,
                                                      cipher: cipher, covering: rec.plaintextSize, path: path)
        {
            // A crash tore the redo record of a write that grew the last block: the old block is intact and
            // zeros follow it up to the record's dataEnd (see ``endBeforeZeroExtension``). The old end is the
            // region's end; a writer cuts the zeros off now, before anything appends to that block.
            stored = end
            if writable {
                try mapErrors(path, "cannot truncate") { try Sys.ftruncate(fd, Int64(info.header.dataOffset) + Int64(end)) }
                info.backingLength = Int64(info.header.dataOffset) + Int64(end)
                info.journal = nil
            }
        }
        guard let available = ContentCipher.plaintextSize(forStoredLength: stored), available >= rec.plaintextSize else {
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): the file is truncated: it should hold \(rec.plaintextSize) bytes")
        }
        state = Mutex(State(info: info, sizeRecord: rec, storedLength: stored, committedSize: rec.plaintextSize))
    }

    /// Where the data region really ends when its last stored block, as the region's length delimits it, fails
    /// to authenticate only because zeros follow it: nil when the last block authenticates as it is, or when no
    /// shorter end does.
    ///
    /// A write that grows the file's partial last block puts its redo record (``WriteJournal``) at the new end of
    /// the data region, so the file grows first and the gap between the old end and the record reads as zeros. If
    /// a crash tears the record's payload, the in-place write had not begun: the old block is intact, but recovery
    /// (which needs no key and so cannot tell where the old block ended) cuts the file at the record's `dataEnd`,
    /// leaving the old block followed by zeros. With the key the old end can be found: it lies at the start of the
    /// trailing run of zero bytes, or up to 16 bytes past it (the old tag may itself end in zeros, with
    /// probability 2⁻⁸ per byte); the candidate whose block authenticates is the end. Every candidate is
    /// authenticated by AES-GCM (the length is part of what the tag covers), so no wrong end can be accepted.
    static func endBeforeZeroExtension(_ fd: FileDescriptor, dataOffset: Int64, stored: UInt64, cipher: ContentCipher,
                                       covering size: UInt64, path: FilePath?) throws(EFSError) -> UInt64? {
        let sbs = UInt64(ContentCipher.storedBlockSize)
        guard stored > 0 else { return nil }
        func block(_ b: UInt64, to end: UInt64) throws(EFSError) -> Bool {
            let start = b * sbs
            guard end > start + UInt64(ContentCipher.overhead), end - start <= sbs else { return false }
            let bytes = try mapErrors(path, "cannot read") { try Sys.pread(fd, count: Int(end - start), at: dataOffset + Int64(start)) }
            guard UInt64(bytes.count) == end - start else { return false }
            return (try? cipher.open(block: b, bytes, allowHole: false)) != nil
        }
        if try block((stored - 1) / sbs, to: stored) { return nil }
        // The trailing zeros: at most one redo payload long (a write grows the region by no more than that).
        let limit = UInt64(WriteJournal.maximumPayload) + sbs
        var zeroStart = stored
        let chunk: UInt64 = 65_536
        scan: while zeroStart > 0 && stored - zeroStart < limit {
            let from = zeroStart > chunk ? zeroStart - chunk : 0
            let bytes = try mapErrors(path, "cannot read") { try Sys.pread(fd, count: Int(zeroStart - from), at: dataOffset + Int64(from)) }
            guard UInt64(bytes.count) == zeroStart - from else { return nil }
            for i in stride(from: bytes.count - 1, through: 0, by: -1) {
                if bytes[i] != 0 { break scan }
                zeroStart -= 1
            }
        }
        guard zeroStart < stored else { return nil }
        for end in zeroStart...min(stored - 1, zeroStart + 16) where end > 0 {
            guard let plain = ContentCipher.plaintextSize(forStoredLength: end), plain >= size else { continue }
            if try block((end - 1) / sbs, to: end) { return end }
        }
        return nil
    }

    deinit {
        if closesDescriptor && !state.withLock({ $0.closed }) { Sys.close(fd) }
    }

    func checkOpen(_ s: State) throws(EFSError) {
        if s.closed { throw EFSError(.invalidOperation, "\(path?.string ?? "file"): the handle is closed") }
    }

    /// The plaintext size.
    public var size: UInt64 { state.withLock { $0.sizeRecord.plaintextSize } }

    /// Whether the file may contain holes (all-zero stored blocks that read as zeros).
    public var isSparse: Bool { state.withLock { $0.sizeRecord.isSparse } }

    /// The key lists, as of the last open or update.
    public var metadata: FileMetadata { state.withLock { $0.info.metadata } }

    // MARK: - Reading

    /// Reads up to `count` bytes at `offset`; fewer at the end of the file.
    ///
    /// - Throws: ``EFSError/Code/authenticationFailed`` if any block in the range was modified.
    public func read(at offset: UInt64, count: Int) throws(EFSError) -> [UInt8] {
        // Large block-aligned reads (the mount's readahead, `efs cat`): decrypt outside the lock, on every core.
        if offset % UInt64(ContentCipher.blockSize) == 0 && count >= 16 * ContentCipher.blockSize {
            return try readParallel(at: offset, count: count)
        }
        return try state.withLock { (s: inout State) throws(EFSError) -> [UInt8] in
            try self.checkOpen(s)
            return try self.readLocked(&s, at: offset, count: count)
        }
    }

    func readLocked(_ s: inout State, at offset: UInt64, count: Int) throws(EFSError) -> [UInt8] {
        let size = s.sizeRecord.plaintextSize
        guard count > 0, offset < size else { return [] }
        let end = min(size, offset + UInt64(count))
        let bs = UInt64(ContentCipher.blockSize)
        let first = offset / bs
        let last = (end - 1) / bs
        let storedStart = first * UInt64(ContentCipher.storedBlockSize)
        let storedEnd = min(s.storedLength, (last + 1) * UInt64(ContentCipher.storedBlockSize))
        guard storedEnd > storedStart else { throw truncated(size) }
        let stored = try mapErrors(path, "cannot read") {
            try Sys.pread(fd, count: Int(storedEnd - storedStart), at: dataOffset + Int64(storedStart))
        }
        guard UInt64(stored.count) == storedEnd - storedStart else { throw truncated(size) }
        // Every block but the last is whole, so the blocks hold this much plaintext; it must reach `end`.
        let blocks = Int(last - first + 1)
        let from = Int(offset - first * bs), to = Int(end - first * bs)
        guard stored.count - blocks * ContentCipher.overhead >= to else { throw truncated(size) }
        // One buffer for the run's plaintext, opened by the file's reused AES-GCM context (no array per block).
        var plain = [UInt8](repeating: 0, count: blocks * ContentCipher.blockSize)
        let failed = stored.withUnsafeBytes { st in
            plain.withUnsafeMutableBytes { cipher.openBlocks(first: first, stored: st, into: $0, allowHole: s.sizeRecord.isSparse) }
        }
        if let failed {
            let b = first + UInt64(failed)
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): authentication failed in bytes \(b * bs)..<\((b + 1) * bs): the data was modified or does not belong to this file")
        }
        if from == 0 && to == plain.count { return plain }
        return Array(plain[from..<to])
    }

    private func truncated(_ size: UInt64) -> EFSError {
        EFSError(.authenticationFailed, "\(path?.string ?? "file"): the file is truncated: it should hold \(size) bytes")
    }

    /// Plaintext of block `b` cut to the first `length` bytes (bytes past the file size count as zero).
    private func existingBlock(_ s: inout State, _ b: UInt64, length: Int) throws(EFSError) -> [UInt8] {
        guard length > 0 else { return [] }
        var plain = try readLocked(&s, at: b * UInt64(ContentCipher.blockSize), count: length)
        if plain.count < length { plain.append(contentsOf: repeatElement(0, count: length - plain.count)) }
        return plain
    }

    // MARK: - Writing

    /// Writes `bytes` at `offset`, extending the file (with a hole in any gap) if needed.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(EFSError) {
        guard writable else { throw EFSError(.accessDenied, "\(path?.string ?? "file"): not open for writing") }
        guard !bytes.isEmpty else { return }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow, end <= Limits.maximumPlaintextSize else {
            throw EFSError(.invalidArgument, "write past the largest file size")
        }
        try state.withLock { (s: inout State) throws(EFSError) in
            try self.checkOpen(s)
            try self.cleanTail(&s)
            let oldSize = s.sizeRecord.plaintextSize
            let newSize = max(oldSize, end)
            let bs = UInt64(ContentCipher.blockSize)
            let touchedFirst = offset / bs
            let touchedLast = (end - 1) / bs
            let usedBlocks = (oldSize + bs - 1) / bs
            // Blocks between the old end and the write become holes.
            let sparse = s.sizeRecord.isSparse || touchedFirst > usedBlocks
            // The old last partial block grows when the file grows past it: complete it first (zero-filled).
            if oldSize % bs != 0, oldSize / bs < touchedFirst {
                try self.rewriteBlocks(&s, (oldSize / bs)...(oldSize / bs), newSize: newSize, overlay: [], overlayOffset: 0)
            }
            try self.rewriteBlocks(&s, touchedFirst...touchedLast, newSize: newSize, overlay: bytes, overlayOffset: offset)
            if newSize != oldSize || sparse != s.sizeRecord.isSparse {
                try self.updateSize(&s, newSize, sparse: sparse)
            }
        }
    }

    /// Re-seals `blocks` for a file of `newSize` bytes, overlaying `overlay` at plaintext `overlayOffset`.
    private func rewriteBlocks(_ s: inout State, _ blocks: ClosedRange<UInt64>, newSize: UInt64, overlay: [UInt8], overlayOffset: UInt64) throws(EFSError) {
        let bs = UInt64(ContentCipher.blockSize)
        let oldSize = s.sizeRecord.plaintextSize
        let overlayEnd = overlayOffset + UInt64(overlay.count)
        // The plaintext of the run, block after block (only the last block of a run can be shorter than 4096:
        // a short block is always the file's last), sealed in one go below.
        var plainAll: [UInt8] = []
        plainAll.reserveCapacity(blocks.count * ContentCipher.blockSize)
        for b in blocks {
            let start = b * bs
            // A stored block is never rewritten shorter than it is: a last block may be longer than the size
            // needs (after a shrink), and the bytes past the size are zeros by definition.
            let storedOffset = b * UInt64(ContentCipher.storedBlockSize)
            let storedPlain = s.storedLength > storedOffset + UInt64(ContentCipher.overhead)
                ? Int(min(UInt64(ContentCipher.storedBlockSize), s.storedLength - storedOffset)) - ContentCipher.overhead : 0
            let newLen = max(Int(min(bs, newSize - start)), storedPlain)
            precondition(newLen == ContentCipher.blockSize || b == blocks.upperBound, "a short block inside a run")
            let oldLen = Int(min(bs, oldSize > start ? oldSize - start : 0))
            let coverFrom = overlayOffset > start ? Int(overlayOffset - start) : 0
            let coverTo = overlayEnd > start ? Int(min(bs, overlayEnd - start)) : 0
            let fullyCovered = !overlay.isEmpty && coverFrom == 0 && coverTo >= newLen
            if fullyCovered {
                let srcFrom = Int(start - overlayOffset)
                plainAll.append(contentsOf: overlay[srcFrom..<(srcFrom + newLen)])
                continue
            }
            var plain: [UInt8]
            if oldLen == 0 {
                plain = [UInt8](repeating: 0, count: newLen)
            } else {
                plain = try existingBlock(&s, b, length: oldLen)
                if plain.count < newLen { plain.append(contentsOf: repeatElement(0, count: newLen - plain.count)) }
            }
            if !overlay.isEmpty, coverTo > coverFrom {
                let srcFrom = Int(start + UInt64(coverFrom) - overlayOffset)
                plain.replaceSubrange(coverFrom..<coverTo, with: overlay[srcFrom..<(srcFrom + coverTo - coverFrom)])
            }
            plainAll.append(contentsOf: plain)
        }
        let out = BlockStream.seal(cipher, first: blocks.lowerBound, plaintext: plainAll)
        let at = blocks.lowerBound * UInt64(ContentCipher.storedBlockSize)
        try writeStored(&s, out, at: at)
    }

    /// Puts stored bytes at data-region offset `at` (a block boundary). Bytes that replace existing stored bytes of
    /// a block a size record on disk covers go through a redo record (``WriteJournal``), in runs of at most
    /// ``WriteJournal/maximumPayload`` bytes, so that a crash in the middle of the write (a SIGKILL can stop a write
    /// between two pages) leaves each block old or new. Bytes of blocks no size record on disk reaches (past the
    /// end of the data region, or past ``State/committedSize``: what a sequential writer keeps extending until the
    /// deferred record is written) are written directly: until a size record covers them they are not data, and
    /// after a crash they are a stale tail, dropped by the next writer.
    private func writeStored(_ s: inout State, _ out: [UInt8], at: UInt64) throws(EFSError) {
        try finishInterrupted(&s)
        let bs = UInt64(ContentCipher.blockSize), sbs = UInt64(ContentCipher.storedBlockSize)
        // Stored bytes from here on belong to blocks that start at or past the committed size.
        let invisibleFrom = (s.committedSize + bs - 1) / bs * sbs
        var done = 0
        while done < out.count {
            let target = at + UInt64(done)
            // Whole blocks: a record covers every byte of a block it changes (a partial last block grows in it).
            let protected = min((s.storedLength + sbs - 1) / sbs * sbs, invisibleFrom)
            let overwrites = target < protected
            let n = overwrites ? min(out.count - done, WriteJournal.maximumPayload, Int(protected - target)) : out.count - done
            let part = out[done..<(done + n)]
            let end = max(s.storedLength, target + UInt64(n))
            var inPlaceStarted = false
            var recordEnd: Int64 = 0
            do throws(Errno) {
                if overwrites {
                    // Footer first (one write inside one page), then the payload, then in place. The record is left
                    // where it is once the write is done: redoing a completed write changes nothing, and the next
                    // record of the same length (a run of 4 KiB random writes) goes exactly over it, its footer first,
                    // so the file keeps ending with the newest record and is not cut and grown again for every
                    // write. Anything else removes it first (``dropCompletedRecord(_:)``).
                    let record = WriteJournal(target: target, regionBefore: s.storedLength, payload: Array(part))
                    let footerAt = record.footerOffset(dataOffset: UInt64(dataOffset))
                    recordEnd = dataOffset + Int64(footerAt) + Int64(WriteJournal.footerSize)
                    if let old = s.completedRecordEnd, old != recordEnd { try cutToRegion(&s) }
                    try Sys.pwriteAll(fd, record.footer(fileID: header.fileID), at: dataOffset + Int64(footerAt))
                    try Sys.pwriteAll(fd, part, at: dataOffset + Int64(end))
                    inPlaceStarted = true
                    try Sys.pwriteAll(fd, part, at: dataOffset + Int64(target))
                    s.completedRecordEnd = recordEnd
                } else {
                    if s.completedRecordEnd != nil { try cutToRegion(&s) }
                    try Sys.pwriteAll(fd, part, at: dataOffset + Int64(target))
                }
            } catch {
                // A write cut short (ENOSPC, EDQUOT, EIO) must not leave a record or a partial block past the end,
                // unless the in-place write had begun: then the record stays (the next writable open redoes it), and
                // this handle redoes it before its next change (``finishInterrupted(_:)``).
                if inPlaceStarted {
                    s.completedRecordEnd = nil
                    s.interrupted = InterruptedWrite(payload: Array(part), target: target, regionEnd: end, recordEnd: recordEnd)
                } else {
                    try? cutToRegion(&s)
                }
                throw EFSError.system(error, "cannot write", path)
            }
            s.storedLength = end
            done += n
        }
    }

    /// Sets the plaintext size, growing with a hole or shrinking.
    public func truncate(to newSize: UInt64) throws(EFSError) {
        guard writable else { throw EFSError(.accessDenied, "\(path?.string ?? "file"): not open for writing") }
        guard newSize <= Limits.maximumPlaintextSize else { throw EFSError(.invalidArgument, "size too large") }
        try state.withLock { (s: inout State) throws(EFSError) in
            try self.checkOpen(s)
            try self.cleanTail(&s)
            try self.dropCompletedRecord(&s)
            let oldSize = s.sizeRecord.plaintextSize
            let bs = UInt64(ContentCipher.blockSize)
            if newSize == oldSize { return }
            if newSize < oldSize {
                // Shrink: the size record first, so a crash leaves stale data past the end, never a short file.
                // The block holding the new end is kept whole (bytes past the size are ignored and count as zero
                // when the file grows again), so no block is ever rewritten in a way a crash could tear.
                try self.updateSize(&s, newSize, sparse: s.sizeRecord.isSparse, force: true)
                // Barrier: the smaller size must be on disk before any data goes, or a power loss could keep the
                // truncation and lose the record, leaving a size larger than the data.
                try mapErrors(self.path, "cannot sync") { try Sys.fdatasync(self.fd) }
                // The smaller record is durable now: no crash can bring back a larger one.
                s.committedSize = newSize
                try self.trimToBlockBoundary(&s)
            } else {
                // Grow: complete the old last block, then extend with zeros (holes), then publish the size.
                var sparse = s.sizeRecord.isSparse
                if oldSize % bs != 0 {
                    let lb = oldSize / bs
                    try self.rewriteBlocks(&s, lb...lb, newSize: newSize, overlay: [], overlayOffset: 0)
                }
                let len = ContentCipher.storedLength(forPlaintextSize: newSize)
                if len > s.storedLength {
                    sparse = true
                    // The re-seal above may have left its record past the region: cut it off first, or growing
                    // the file over it would leave its bytes where the new blocks must read as holes.
                    try self.dropCompletedRecord(&s)
                    try mapErrors(self.path, "cannot truncate") { try Sys.ftruncate(self.fd, self.dataOffset + Int64(len)) }
                    s.storedLength = len
                }
                try self.updateSize(&s, newSize, sparse: sparse, force: true)
            }
        }
    }

    /// Makes the plaintext `offset..<offset+count` read as zeros without changing the size (`fallocate` with
    /// `FALLOC_FL_PUNCH_HOLE`). Bytes past the end of the file are left alone, as on ext4.
    ///
    /// The partial blocks at either end are re-sealed with zeros. Whole blocks become holes in the backing file:
    /// the file is marked authenticated-sparse first (and that record made durable), so an all-zero stored block
    /// reads as zeros; a crash between the two steps leaves the old data or zeros, never an unreadable block. Where
    /// the backing file system cannot punch holes, the whole blocks are re-sealed as zeros instead.
    public func punchHole(at offset: UInt64, count: UInt64) throws(EFSError) {
        guard writable else { throw EFSError(.accessDenied, "\(path?.string ?? "file"): not open for writing") }
        let (requestedEnd, overflow) = offset.addingReportingOverflow(count)
        guard !overflow else { throw EFSError(.invalidArgument, "the range to punch ends past the largest file size") }
        try state.withLock { (s: inout State) throws(EFSError) in
            try self.checkOpen(s)
            try self.cleanTail(&s)
            try self.dropCompletedRecord(&s)
            let size = s.sizeRecord.plaintextSize
            let end = min(size, requestedEnd)
            guard end > offset else { return }
            let bs = UInt64(ContentCipher.blockSize)
            let sbs = UInt64(ContentCipher.storedBlockSize)
            // Block b is wholly zeroed when its used bytes b*bs..<min((b+1)*bs, size) lie inside offset..<end.
            let firstWhole = (offset + bs - 1) / bs
            let lastWhole = end == size ? (size + bs - 1) / bs : end / bs  // exclusive
            func zero(_ from: UInt64, _ to: UInt64) throws(EFSError) {
                guard to > from else { return }
                try self.rewriteBlocks(&s, (from / bs)...((to - 1) / bs), newSize: size,
                                       overlay: [UInt8](repeating: 0, count: Int(to - from)), overlayOffset: from)
            }
            guard firstWhole < lastWhole else {
                try zero(offset, end)  // inside one block, or across one boundary with no whole block
                return
            }
            try zero(offset, firstWhole * bs)
            if lastWhole * bs < end { try zero(lastWhole * bs, end) }
            if !s.sizeRecord.isSparse {
                try self.updateSize(&s, size, sparse: true, force: true)
                // Barrier: the sparse mark must be on disk before the holes, or a power loss could leave holes in a
                // file whose record says it has none (they would fail authentication).
                try mapErrors(self.path, "cannot sync") { try Sys.fdatasync(self.fd) }
            }
            let from = firstWhole * sbs
            let to = min(s.storedLength, lastWhole * sbs)
            guard to > from else { return }
            if !Sys.punchHole(self.fd, offset: self.dataOffset + Int64(from), length: Int64(to - from)) {
                // No hole punching here (tmpfs before 3.5, some FUSE or network file systems): write zeros.
                var b = firstWhole
                while b < lastWhole {
                    let n = min(lastWhole - b, 256)
                    try zero(b * bs, min(size, (b + n) * bs))
                    b += n
                }
            }
        }
    }

    /// Writes a new size record (or marks it dirty in deferred mode).
    private func updateSize(_ s: inout State, _ size: UInt64, sparse: Bool, force: Bool = false) throws(EFSError) {
        s.sizeRecord = SizeRecord(generation: s.sizeRecord.generation, plaintextSize: size, isSparse: sparse)
        if deferSizeUpdates && !force {
            s.sizeDirty = true
            return
        }
        try writeSizeRecord(&s)
    }

    private func writeSizeRecord(_ s: inout State) throws(EFSError) {
        s.sizeRecord.generation += 1
        let bytes = s.sizeRecord.encoded(fek)
        let off = FileHeader.sizeRecordOffsets[s.sizeRecord.copyIndex]
        try mapErrors(path, "cannot write") { try Sys.pwriteAll(fd, bytes, at: Int64(off)) }
        s.sizeDirty = false
        s.committedSize = max(s.committedSize, s.sizeRecord.plaintextSize)
    }

    /// Drops whole stored blocks past the one that holds the last byte of the file (stale data from a shrink or a
    /// crash). The last block itself may stay longer than the size needs.
    private func trimToBlockBoundary(_ s: inout State) throws(EFSError) {
        try finishInterrupted(&s)
        let size = s.sizeRecord.plaintextSize
        let blocks = (size + UInt64(ContentCipher.blockSize) - 1) / UInt64(ContentCipher.blockSize)
        let keep = min(s.storedLength, blocks * UInt64(ContentCipher.storedBlockSize))
        if s.storedLength > keep {
            try mapErrors(path, "cannot truncate") { try Sys.ftruncate(fd, dataOffset + Int64(keep)) }
            s.storedLength = keep
            s.completedRecordEnd = nil
        }
    }

    /// Cuts off the redo record a completed in-place overwrite left in place, so the file ends with its data region
    /// again. Truncate and hole punching do this first (a grow with the record still there would leave its bytes
    /// inside the region), a write that is not an in-place overwrite of the same length does it in
    /// ``writeStored(_:_:at:)``, and so do flush, close and giving up the lock, so a file nobody writes ends with
    /// its data.
    private func dropCompletedRecord(_ s: inout State) throws(EFSError) {
        try finishInterrupted(&s)
        guard s.completedRecordEnd != nil else { return }
        do { try cutToRegion(&s) } catch { throw EFSError.system(error, "cannot truncate", path) }
    }

    /// Cuts the file back to the end of its data region, with whatever record followed it (an interrupted write
    /// goes down first: its record is the only intact copy of its bytes).
    private func cutToRegion(_ s: inout State) throws(Errno) {
        try redoInterrupted(&s)
        try Sys.ftruncate(fd, dataOffset + Int64(s.storedLength))
        s.completedRecordEnd = nil
    }

    /// Redoes an overwrite that failed after it began writing in place (``State/interrupted``), so that the next
    /// change cannot put its own record over the only intact copy of those bytes. Until it succeeds, every change
    /// fails. Its record is then a completed one.
    private func finishInterrupted(_ s: inout State) throws(EFSError) {
        do { try redoInterrupted(&s) } catch { throw EFSError.system(error, "cannot finish an interrupted write", path) }
    }

    private func redoInterrupted(_ s: inout State) throws(Errno) {
        guard let i = s.interrupted else { return }
        try Sys.pwriteAll(fd, i.payload, at: dataOffset + Int64(i.target))
        s.storedLength = max(s.storedLength, i.regionEnd)
        s.completedRecordEnd = i.recordEnd
        s.interrupted = nil
    }

    /// Drops stale data past the end implied by the size record (left by a crash), once per handle.
    private func cleanTail(_ s: inout State) throws(EFSError) {
        try finishInterrupted(&s)
        guard !s.tailClean else { return }
        if s.info.physicalDataLength > s.storedLength {
            try mapErrors(path, "cannot truncate") { try Sys.ftruncate(fd, dataOffset + Int64(s.storedLength)) }
        }
        try trimToBlockBoundary(&s)
        s.tailClean = true
    }

    /// Writes any pending size record, without waiting for the disk (what `close(2)` does on a local file system).
    ///
    /// A process crash after this loses nothing. A power loss before the kernel writes the data back can leave a
    /// record ahead of the data; the blocks it promises then fail authentication (never wrong plaintext) until
    /// rewritten, which `efs fsck` reports. Call ``sync()`` for durability.
    public func flush() throws(EFSError) {
        try state.withLock { (s: inout State) throws(EFSError) in
            try self.checkOpen(s)
            try self.dropCompletedRecord(&s)
            if s.sizeDirty { try self.writeSizeRecord(&s) }
        }
    }

    /// Writes any pending size record and flushes data to stable storage.
    public func sync() throws(EFSError) {
        try state.withLock { (s: inout State) throws(EFSError) in
            try self.checkOpen(s)
            if s.sizeDirty {
                // Barrier: the data first, then the record that makes it visible, so a power loss never leaves a
                // record that promises data the disk does not have.
                try mapErrors(self.path, "cannot sync") { try Sys.fdatasync(self.fd) }
                try self.writeSizeRecord(&s)
            }
            try mapErrors(self.path, "cannot sync") { try Sys.fdatasync(self.fd) }
        }
    }

    /// Gives up the file's EFS lock but keeps the descriptor, so that reads already under way on this handle finish.
    /// The mount does this when a writable open replaces a shared read-only handle (OFD locks conflict even within a
    /// process); it closes the handle once the file's last open goes.
    public func releaseLock() {
        state.withLock { s in
            guard !s.closed else { return }
            // A record left there would be redone, harmlessly, by the next writer; cut it off if possible.
            try? self.dropCompletedRecord(&s)
            Sys.unlock(self.fd)
        }
    }

    /// Takes the shared EFS lock again after ``releaseLock()`` (a read-only handle whose replacement could not be
    /// opened goes back to serving the file). Returns false if another handle holds the file exclusively now.
    public func relockShared() -> Bool {
        state.withLock { s in !s.closed && ((try? Sys.tryLockShared(self.fd)) ?? false) }
    }

    /// Writes any pending size record, closes the descriptor and releases the file's lock. Later calls fail with
    /// ``EFSError/Code/invalidOperation``; closing twice is harmless.
    public func close() throws(EFSError) {
        try state.withLock { (s: inout State) throws(EFSError) in
            if s.closed { return }
            defer {
                s.closed = true
                if self.closesDescriptor { Sys.close(self.fd) }
            }
            // A record that cannot be cut off (EIO) is a completed one: the next writable open redoes it, changing
            // nothing.
            try? self.dropCompletedRecord(&s)
            if s.sizeDirty { try self.writeSizeRecord(&s) }
        }
    }
}

// MARK: - Creating

extension EncryptedFile {
    /// Writes the header, metadata slot 0 and an empty size record to a new, empty backing file.
    static func writeNewFileStructure(_ fd: FileDescriptor, fek: FileEncryptionKey, metadata: FileMetadata, path: FilePath?) throws(EFSError) -> FileHeader {
        try writeNewFile(fd, fek: fek, metadata: metadata, path: path).header
    }

    /// Writes the structure of a new, empty backing file (as ``writeNewFileStructure(_:fek:metadata:path:)``) and
    /// returns what a read of it would find, so that a handle can be made on `fd` without reading it back.
    static func writeNewFile(_ fd: FileDescriptor, fek: FileEncryptionKey, metadata: FileMetadata, path: FilePath?) throws(EFSError) -> EncryptedFileInfo {
        let body = metadata.encoded(fek)
        let header = FileHeader(fileID: fek.fileID, slotCapacity: FileHeader.slotCapacity(forMetadataSize: body.count))
        let slot = MetadataSlot.encode(body: body, generation: 1)
        let rec = SizeRecord(generation: 1, plaintextSize: 0, isSparse: false).encoded(fek)
        var head = header.encoded()
        head += [UInt8](repeating: 0, count: FileHeader.sizeRecordOffsets[1] - head.count)
        head += rec  // generation 1 lives in copy 1 (offset 128)
        try mapErrors(path, "cannot write") {
            try Sys.pwriteAll(fd, head, at: 0)
            try Sys.pwriteAll(fd, slot, at: Int64(header.slotOffset(0)))
            try Sys.ftruncate(fd, Int64(header.dataOffset))
        }
        return EncryptedFileInfo(
            header: header, metadata: metadata, metadataBody: body, metadataGeneration: 1, activeSlot: 0,
            backingLength: Int64(header.dataOffset), sizeRecordBytes: Array(head[FileHeader.sizeRecordOffsets[0]...]),
            journal: nil)
    }
}
