// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSSystem
import SystemPackage

/// Buffered, counted output of an archive to a file descriptor.
final class ArchiveOutput {
    /// Bytes gathered before a write: small headers and files go out in few system calls.
    static let bufferSize = 1 << 20

    let fd: FileDescriptor
    private var buffer: [UInt8] = []
    /// Bytes handed to ``write(_:)`` so far.
    private(set) var count: UInt64 = 0

    init(_ fd: FileDescriptor) {
        self.fd = fd
        buffer.reserveCapacity(Self.bufferSize)
    }

    func write(_ bytes: some ContiguousCollection<UInt8>) throws(EFSError) {
        count += UInt64(bytes.count)
        if buffer.count + bytes.count <= Self.bufferSize {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= Self.bufferSize {
            try put(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    func flush() throws(EFSError) {
        guard !buffer.isEmpty else { return }
        try put(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private func put(_ bytes: some ContiguousCollection<UInt8>) throws(EFSError) {
        do { try Sys.writeAll(fd, bytes) } catch {
            throw EFSError.system(error, "cannot write the archive")
        }
    }
}

/// Reads an archive from a file descriptor through an ``ArchiveReader``, a bounded chunk at a time.
final class ArchiveInput {
    /// Bytes read from the descriptor at a time.
    static let chunkSize = 256 * 1024

    let fd: FileDescriptor
    private(set) var reader = ArchiveReader()
    private var endOfInput = false
    /// The first error the input itself hit (truncation, a read error): fatal for the whole archive.
    private(set) var failure: EFSError?

    init(_ fd: FileDescriptor) { self.fd = fd }

    /// Bytes of the archive consumed so far.
    var offset: UInt64 { reader.offset }

    /// The next entry, or nil at the end of the archive (after checking that only zeros follow it).
    func next() throws(EFSError) -> ArchiveEntry? {
        while true {
            if let entry = try step({ (r: inout ArchiveReader) throws(ArchiveError) in try r.next() }) { return entry }
            if endOfInput {
                do { try reader.finish() } catch { throw fail(Self.map(error)) }
                return nil
            }
            try fill()
        }
    }

    /// Up to `maximum` content bytes of the current entry; empty only when the entry has no content left.
    func readContent(maximum: Int) throws(EFSError) -> [UInt8] {
        while true {
            if reader.contentRemaining == 0 { return [] }
            let chunk = reader.readContent(maximum: maximum)
            if !chunk.isEmpty { return chunk }
            if endOfInput {
                throw fail(EFSError(.corrupt, "the archive is truncated: it ends inside an entry's content (\(reader.contentRemaining) bytes missing)"))
            }
            try fill()
        }
    }

    private func step(_ body: (inout ArchiveReader) throws(ArchiveError) -> ArchiveEntry?) throws(EFSError) -> ArchiveEntry? {
        do { return try body(&reader) } catch { throw fail(Self.map(error)) }
    }

    private func fill() throws(EFSError) {
        let chunk: [UInt8]
        do { chunk = try Sys.read(fd, count: Self.chunkSize) } catch { throw fail(EFSError.system(error, "cannot read the archive")) }
        if chunk.isEmpty { endOfInput = true } else { reader.append(chunk) }
    }

    private func fail(_ e: EFSError) -> EFSError {
        if failure == nil { failure = e }
        return e
    }

    static func map(_ e: ArchiveError) -> EFSError {
        switch e.code {
        case .truncated: EFSError(.corrupt, "the archive is truncated at byte \(e.offset): \(e.message)", cause: e)
        case .unsupported: EFSError(.notSupported, "\(e)", cause: e)
        default: EFSError(.corrupt, "\(e)", cause: e)
        }
    }
}
