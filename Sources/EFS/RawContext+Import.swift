// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import SystemPackage

extension RawContext {
    /// Largest chunk asked of an import callback.
    public static let importChunkSize = 65_536

    /// `WriteEncryptedFileRaw`: pulls the stream from `source` until it returns an empty chunk, checks it, and
    /// replaces the target atomically. `source` gets the most bytes it may return.
    ///
    /// - Throws: ``EFSError/Code/notExportFormat`` for a malformed stream (nothing is changed),
    ///   ``EFSError/Code/aborted`` if `source` throws.
    public func write(_ source: (Int) throws -> [UInt8]) throws(EFSError) {
        try write(chunkSize: Self.importChunkSize, source)
    }

    /// Bytes read at a time by ``importStream(from:)``: larger than a callback chunk, so a big import makes a
    /// sixteenth of the system calls.
    static let descriptorReadSize = 1 << 20

    /// - Parameter finishing: runs on the complete temporary file just before it is fsynced and renamed into place
    ///   (after the import's own mode), so whatever it sets (`efs restore`: the archived mode, owner and times)
    ///   appears with the content in one step. A failure discards the import like a bad stream.
    func write(chunkSize: Int, finishing: ((FileDescriptor) throws(Errno) -> Void)? = nil,
               _ source: (Int) throws -> [UInt8]) throws(EFSError) {
        try begin(importing: true)
        var importer = Importer(context: self, finishing: finishing)
        var decoder = RawStreamDecoder()
        var buffer = RawInputBuffer()
        do {
            while true {
                let chunk: [UInt8]
                do { chunk = try source(chunkSize) } catch {
                    throw EFSError(.aborted, "\(path): the import callback stopped the import", cause: error)
                }
                guard chunk.count <= chunkSize else {
                    throw EFSError(.invalidArgument, "the import callback returned more bytes than asked for")
                }
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let record = try decoder.next(from: &buffer) { try importer.handle(record) }
            }
            try decoder.finish(buffer)
            try importer.commit()
        } catch let e as RawStreamError {
            importer.discard()
            throw EFSError(.notExportFormat, "\(path): \(e)", cause: e)
        } catch let e as EFSError {
            importer.discard()
            throw e
        } catch {
            importer.discard()
            throw EFSError(.ioError, "\(path): \(error)", cause: error)
        }
    }

    /// Imports from a file descriptor until end of file.
    public func importStream(from input: FileDescriptor) throws(EFSError) {
        try write(chunkSize: Self.descriptorReadSize) { max in
            do throws(Errno) { return try Sys.read(input, count: max) } catch { throw EFSError.system(error, "cannot read the stream") }
        }
    }
}

/// Applies decoded records to a temporary file (or a directory marker) and commits it.
struct Importer {
    let context: RawContext
    var path: FilePath { context.path }
    var fd: FileDescriptor?
    var meta: RawMetadata?
    var header: FileHeader?
    var current: RawStreamHeader?
    /// End of the data written so far, in stored bytes, and whether the last block written was partial.
    var storedEnd: UInt64 = 0
    var endedWithPartialBlock = false
    var named: [(String, [UInt8])] = []
    var namedValue: [UInt8] = []
    /// Data segments not yet written: consecutive stored bytes from `pendingOffset`, written in one `pwrite` once
    /// they reach ``flushSize`` (segments are ~60 KiB; one write per segment cost a third of a large import).
    var pending: [UInt8] = []
    var pendingOffset: Int64 = 0
    static let flushSize = 4 << 20

    /// See ``RawContext/write(chunkSize:finishing:_:)``.
    let finishing: ((FileDescriptor) throws(Errno) -> Void)?

    init(context: RawContext, finishing: ((FileDescriptor) throws(Errno) -> Void)? = nil) {
        self.context = context
        self.finishing = finishing
    }

    var directoryTarget: Bool { context.flags.contains(.createForDirectory) }

    mutating func handle(_ record: RawRecord) throws {
        switch record {
        case .header:
            break
        case .metadata(let bytes):
            let m: RawMetadata
            do { m = try RawMetadata(decoding: bytes) } catch {
                throw EFSError(.notExportFormat, "\(path): the metadata stream is not swift-efs metadata: \(error.message)", cause: error)
            }
            meta = m
            try createTemporary(m)
        case .stream(let h):
            try flushNamed()
            current = h
            if h.kind == .data, directoryTarget {
                throw EFSError(.notExportFormat, "\(path): a directory's stream has a data stream")
            }
            if h.flag != 0, h.kind != .metadata {
                throw EFSError(.notExportFormat, "\(path): stream without FEK encryption (Flag 1) refused: a raw stream never carries plaintext")
            }
        case .segment(let seg, let payload):
            guard let seg, let cur = current else { throw EFSError(.notExportFormat, "\(path): a segment without an encryption header") }
            switch cur.kind {
            case .data: try writeData(seg, payload)
            case .named:
                guard !context.flags.contains(.dropAlternateStreams) else { return }
                guard seg.startingFileOffset == 0, namedValue.isEmpty,
                    payload.count <= NamedStreamCipher.maximumValueSize + ContentCipher.overhead
                else {
                    throw EFSError(.notExportFormat, "\(path): a named stream must be one segment at offset 0")
                }
                namedValue = payload
            case .metadata: throw EFSError(.notExportFormat, "\(path): unexpected metadata segment")
            }
        }
    }

    mutating func flushNamed() throws {
        if let cur = current, case .named(let name) = cur.kind, !context.flags.contains(.dropAlternateStreams) {
            guard named.count < NamedStreams.maximumCount else { throw EFSError(.notExportFormat, "\(path): too many named streams") }
            guard !namedValue.isEmpty else { throw EFSError(.notExportFormat, "\(path): the named stream '\(name)' is empty") }
            guard !name.contains("/"), name.utf8.count + NamedStreams.backingPrefix.utf8.count <= 255 else {
                throw EFSError(.notExportFormat, "\(path): bad named stream name")
            }
            named.append((name, namedValue))
        }
        namedValue = []
    }

    mutating func createTemporary(_ m: RawMetadata) throws {
        let (dir, name) = context.state.withLock { ($0.directory, $0.name) }
        guard let dir else { throw EFSError(.invalidOperation, "the raw context is closed") }
        // A directory's marker is made beside the directory (`..NAME.efs-tmp-…`) and renamed into it at commit.
        let tmp = TemporaryName.name(for: directoryTarget ? ".\(name)" : name)
        let h = FileHeader(fileID: m.header.fileID, slotCapacity: FileHeader.slotCapacity(forMetadataSize: m.metadataBody.count))
        let newFD = try Sys.openat(dir, tmp, [.readWrite, .create, .exclusive, .noFollow], mode: [.ownerReadWrite])
        fd = newFD
        context.state.withLock {
            $0.temporary = tmp
            $0.temporaryFD = newFD
        }
        try Sys.pwriteAll(newFD, h.encoded() + m.sizeRecordBytes, at: 0)
        try Sys.pwriteAll(newFD, MetadataSlot.encode(body: m.metadataBody, generation: 1), at: Int64(h.slotOffset(0)))
        try Sys.ftruncate(newFD, Int64(h.dataOffset))
        header = h
    }

    mutating func writeData(_ seg: DataSegmentHeader, _ payload: [UInt8]) throws {
        guard let fd, let header else { throw EFSError(.notExportFormat, "\(path): data before metadata") }
        // Our data segments: one data block, offsets on block boundaries, whole stored blocks except at the end.
        guard seg.dataBlockSizes.count == 1, seg.startingFileOffset % UInt64(ContentCipher.blockSize) == 0 else {
            throw EFSError(.notExportFormat, "\(path): a data segment is not laid out in swift-efs blocks")
        }
        guard !endedWithPartialBlock else { throw EFSError(.notExportFormat, "\(path): data follows a partial last block") }
        guard let plain = ContentCipher.plaintextSize(forStoredLength: UInt64(payload.count)), plain == UInt64(seg.bytesWithinStreamSize) else {
            throw EFSError(.notExportFormat, "\(path): a data segment's size does not match its blocks")
        }
        let storedOffset = seg.startingFileOffset / UInt64(ContentCipher.blockSize) * UInt64(ContentCipher.storedBlockSize)
        let at = Int64(header.dataOffset) + Int64(storedOffset)
        if pending.isEmpty || at != pendingOffset + Int64(pending.count) || pending.count + payload.count > Self.flushSize {
            try flushData(fd)
            pendingOffset = at
            if pending.capacity < Self.flushSize { pending.reserveCapacity(Self.flushSize) }
        }
        pending += payload
        storedEnd = storedOffset + UInt64(payload.count)
        endedWithPartialBlock = payload.count % ContentCipher.storedBlockSize != 0
    }

    /// Writes the pending data segments and asks the kernel to start writing them back (so the final fsync has
    /// little left to do).
    mutating func flushData(_ fd: FileDescriptor) throws {
        guard !pending.isEmpty else { return }
        try Sys.pwriteAll(fd, pending, at: pendingOffset)
        Sys.startWriteback(fd, offset: pendingOffset, length: Int64(pending.count))
        pending.removeAll(keepingCapacity: true)
    }

    /// Why a named stream (an extended attribute of the backing file) cannot be stored, naming the cause where the
    /// target's file system is the cause: one without extended attributes (sshfs, NFS before 4.2, some SMB
    /// mounts), or one whose attribute space is smaller than the stream (ext4 keeps them in one block).
    static func namedStreamError(_ e: Errno, _ name: String, _ size: Int, _ path: FilePath) -> EFSError {
        let remedy = "(import with --drop-streams, EFS_DROP_ALTERNATE_STREAMS, to leave the named streams out)"
        return switch e {
        case .notSupported:
            EFSError(.notSupported, "\(path): the stream holds named stream \(name), and the target's file system does not store extended attributes \(remedy)", cause: e)
        case .noSpace, .argListTooLong:
            EFSError(.notSupported, "\(path): the target's file system has no room for named stream \(name) (\(size) bytes) as an extended attribute \(remedy)", cause: e)
        default:
            EFSError.system(e, "cannot store named stream \(name) of", path)
        }
    }

    /// Checks the whole object, fsyncs it and renames it into place.
    mutating func commit() throws {
        try flushNamed()
        guard let fd, let meta, let header else { throw EFSError(.notExportFormat, "\(path): no metadata stream") }
        try flushData(fd)
        let (dirFD, name, temp, st) = context.state.withLock { ($0.directory, $0.name, $0.temporary, $0.existing) }
        guard let dirFD, let temp else { throw EFSError(.invalidOperation, "the raw context is closed") }
        if !directoryTarget {
            // Holes left out at the end of a sparse file are restored as holes; a short non-sparse file is truncated.
            let needed = ContentCipher.storedLength(forPlaintextSize: meta.claimedPlaintextSize)
            if storedEnd < needed {
                guard meta.claimsSparse, !endedWithPartialBlock || storedEnd == 0 else {
                    throw EFSError(.notExportFormat, "\(path): the stream is truncated: the file should hold \(meta.claimedPlaintextSize) bytes")
                }
                try Sys.ftruncate(fd, Int64(header.dataOffset) + Int64(needed))
            }
        }
        for (name, value) in named {
            do throws(Errno) { try Sys.setXattr(fd, NamedStreams.backingPrefix + name, value) } catch {
                throw Self.namedStreamError(error, name, value.count, path)
            }
        }
        _ = try EncryptedFileInfo.read(fd, path: path)
        var mode = 0o666 & ~Sys.currentUmask()
        if let st, st.kind == .regular {
            mode = st.mode & 0o7777
            if Sys.effectiveUserID == 0 { try? Sys.fchown(fd, uid: st.uid, gid: st.gid) }
        }
        try Sys.fchmod(fd, directoryTarget ? 0o644 : mode)
        do throws(Errno) { try finishing?(fd) } catch {
            throw EFSError.system(error, "cannot set the attributes of", path)
        }
        let durable = context.durability == .eachObject
        if durable { try Sys.fsync(fd) }
        // Every name below is relative to the directory opened by `open`, never resolved from a path again.
        if directoryTarget {
            if (try? Sys.lstatat(dirFD, name)) == nil { try Sys.mkdirat(dirFD, name, mode: 0o777 & ~Sys.currentUmask()) }
            let target = try RawContext.openDirectoryTarget(dirFD, name, path)
            defer { Sys.close(target) }
            try Sys.renameat(dirFD, temp, target, DirectoryMarker.name)
            if durable { try? Sys.fsync(target) }
        } else if st == nil {
            try Sys.renameNoReplaceAt(dirFD, temp, dirFD, name)
        } else {
            try Sys.renameat(dirFD, temp, dirFD, name)
        }
        if durable { try? Sys.fsync(dirFD) }
        context.state.withLock {
            $0.temporary = nil
        }
    }

    /// Removes the temporary file after a failure.
    func discard() {
        context.state.withLock { s in
            if let fd = s.temporaryFD { Sys.close(fd) }
            if let t = s.temporary, let dir = s.directory { try? Sys.unlinkat(dir, t) }
            s.temporaryFD = nil
            s.temporary = nil
        }
    }
}
