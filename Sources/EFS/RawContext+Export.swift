// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import SystemPackage

extension RawContext {
    /// Plaintext bytes per data segment: 15 blocks (61 440 bytes) whose stored form, 61 860 bytes, stays within
    /// the 64 KiB segment size of MS-EFSR.
    public static let blocksPerSegment = 15

    /// What an export will send: computed once, with the file locked, so its length is known in advance.
    struct ExportPlan: Sendable {
        var info: EncryptedFileInfo
        var prefix: [UInt8]
        /// Data segments to send: index of the segment, stored offset and length.
        var segments: [(index: UInt64, storedOffset: UInt64, length: Int)]
        var named: [(name: String, value: [UInt8])]
        var sparse: Bool
        var length: UInt64
    }

    func plan(_ fd: FileDescriptor) throws(EFSError) -> ExportPlan {
        var info = try EncryptedFileInfo.read(fd, path: path)
        if info.journal != nil {
            // A crash interrupted an overwrite: complete it (needs no key) so the stream carries whole blocks. On a
            // descriptor opened read-only this fails, and the export carries the blocks as they are.
            try? info.completePendingWrite(fd, path: path)
        }
        let meta = RawMetadata(header: info.header, sizeRecordBytes: info.sizeRecordBytes, metadataBody: info.metadataBody, metadata: info.metadata)
        var prefix = RawStreamEncoder.header() + RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata)) + RawStreamEncoder.metadataSegment(meta.encoded())
        var length = UInt64(prefix.count)
        var segments: [(UInt64, UInt64, Int)] = []
        if !isDirectory {
            prefix += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data))
            length += UInt64(RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data)).count)
            let stored = info.storedDataLength
            let segStored = UInt64(Self.blocksPerSegment * ContentCipher.storedBlockSize)
            let base = Int64(info.header.dataOffset)
            var off: UInt64 = 0
            var index: UInt64 = 0
            while off < stored {
                let n = min(segStored, stored - off)
                // A segment that lies entirely in a file-system hole is left out: the importer restores the hole.
                // Only the 4 KiB pages wholly inside the segment are asked about: the pages it shares with its
                // neighbours are allocated when a neighbour holds data, and would make a hole look like data (so an
                // export of an import would grow by the zero segments beside each data run). Every whole stored
                // block with data (4124 bytes) writes into at least one inner page of its segment, so none is
                // missed; a short last block shares its page with no later segment, so the last segment's pages
                // run to its end.
                let from = base + Int64(off), to = from + Int64(n)
                let inner = (from + 4095) / 4096 * 4096
                let innerEnd = off + n == stored ? to : to / 4096 * 4096
                let (probe, end) = inner < innerEnd ? (inner, innerEnd) : (from, to)
                let next = try mapErrors(path, "cannot read") { try Sys.nextData(fd, from: probe) }
                if let next, next < end {
                    segments.append((index, off, Int(n)))
                    length += UInt64(RawStream.dataSegmentHeaderSize) + n
                } else if next == nil {
                    break
                }
                off += n
                index += 1
            }
            guard ContentCipher.plaintextSize(forStoredLength: stored) != nil else {
                throw EFSError(.corrupt, "\(path): the data region ends inside a block")
            }
        }
        var named: [(String, [UInt8])] = []
        if !flags.contains(.dropAlternateStreams) {
            let names = ((try? Sys.listXattrs(fd)) ?? []).filter { $0.hasPrefix(NamedStreams.backingPrefix) }.sorted()
            for name in names.prefix(NamedStreams.maximumCount) {
                let value = try mapErrors(path, "cannot read extended attribute") { try Sys.getXattr(fd, name) }
                let streamName = String(name.dropFirst(NamedStreams.backingPrefix.count))
                named.append((streamName, value))
                length += UInt64(Self.namedStream(streamName, value).count)
            }
        }
        return ExportPlan(info: info, prefix: prefix, segments: segments, named: named, sparse: meta.claimsSparse, length: length)
    }

    static func namedStream(_ name: String, _ value: [UInt8]) -> [UInt8] {
        // One segment holding the sealed value as stored; BytesWithinStreamSize is its plaintext length (the
        // value is one AES-GCM message: nonce ‖ ciphertext ‖ tag), whatever its size.
        var bytes = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named(name)))
        let plain = max(0, value.count - ContentCipher.overhead)
        bytes += RawStreamEncoder.dataSegment(offset: 0, plaintextLength: UInt32(plain), payload: value, sparse: false)
        return bytes
    }

    /// The exact number of bytes ``read(_:)`` will produce (for archive headers that need the size first).
    public func streamLength() throws(EFSError) -> UInt64 {
        try state.withLock { (s: inout State) throws(EFSError) in
            guard !s.closed, !isImport, let fd = s.fd else { throw EFSError(.invalidOperation, "not an open export context") }
            if let p = s.plan { return p.length }
            // Kept for read(_:): the object is locked, so what it will send cannot change through EFS meanwhile.
            let p = try plan(fd)
            s.plan = p
            return p.length
        }
    }

    /// `ReadEncryptedFileRaw`: streams the whole object to `sink`: the metadata stream, then the data (files only),
    /// then the named streams. No key is used. A throw from `sink` aborts the export and is reported as
    /// ``EFSError/Code/aborted`` with the sink's error as cause.
    public func read(_ sink: ([UInt8]) throws -> Void) throws(EFSError) {
        try begin(importing: false)
        guard let (fd, planned) = state.withLock({ s in s.fd.map { ($0, s.plan) } }) else {
            throw EFSError(.invalidOperation, "the raw context is closed")
        }
        let plan: ExportPlan
        if let planned { plan = planned } else { plan = try self.plan(fd) }
        func emit(_ bytes: [UInt8]) throws(EFSError) {
            do { try sink(bytes) } catch {
                throw EFSError(.aborted, "\(path): the export callback stopped the export", cause: error)
            }
        }
        try emit(plan.prefix)
        // Segments go out in batches of up to 16 (about 1 MiB): one pread of the contiguous stored bytes, one buffer
        // of headers and payloads, one call to the sink.
        let base = Int64(plan.info.header.dataOffset)
        var i = 0
        var out: [UInt8] = []
        out.reserveCapacity(17 * (RawStream.dataSegmentHeaderSize + Self.blocksPerSegment * ContentCipher.storedBlockSize))
        while i < plan.segments.count {
            var j = i + 1
            while j < plan.segments.count, j - i < 16,
                plan.segments[j].storedOffset == plan.segments[j - 1].storedOffset + UInt64(plan.segments[j - 1].length)
            { j += 1 }
            let start = plan.segments[i].storedOffset
            let total = Int(plan.segments[j - 1].storedOffset - start) + plan.segments[j - 1].length
            let stored = try mapErrors(path, "cannot read") { try Sys.pread(fd, count: total, at: base + Int64(start)) }
            guard stored.count == total else { throw EFSError(.ioError, "\(path) changed during the export") }
            out.removeAll(keepingCapacity: true)
            for seg in plan.segments[i..<j] {
                guard let plain = ContentCipher.plaintextSize(forStoredLength: UInt64(seg.length)) else {
                    throw EFSError(.corrupt, "\(path): the data region ends inside a block")
                }
                let from = Int(seg.storedOffset - start)
                let offset = seg.index * UInt64(Self.blocksPerSegment * ContentCipher.blockSize)
                RawStreamEncoder.appendDataSegment(to: &out, offset: offset, plaintextLength: UInt32(plain), payload: stored[from..<(from + seg.length)], sparse: plan.sparse)
            }
            try emit(out)
            i = j
        }
        for (name, value) in plan.named { try emit(Self.namedStream(name, value)) }
    }

    /// Exports to a file descriptor (a file, a pipe, standard output).
    public func export(to output: FileDescriptor) throws(EFSError) {
        try read { chunk in try Sys.writeAll(output, chunk) }
    }
}
