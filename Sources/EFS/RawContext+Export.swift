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

    /// `ReadEncryptedFileRaw`: streams the whole object to `sink`: the metadata stream, then the data (files only),
    /// then the named streams. No key is used. A throw from `sink` aborts the export and is reported as
    /// ``EFSError/Code/aborted`` with the sink's error as cause.
    public func read(_ sink: ([UInt8]) throws -> Void) throws(EFSError) {
        try begin(importing: false)
        guard let fd = state.withLock({ $0.fd }) else { throw EFSError(.invalidOperation, "the raw context is closed") }
        let info = try EncryptedFileInfo.read(fd, path: path)
        func emit(_ bytes: [UInt8]) throws(EFSError) {
            do { try sink(bytes) } catch {
                throw EFSError(.aborted, "\(path): the export callback stopped the export", cause: error)
            }
        }
        let meta = RawMetadata(header: info.header, sizeRecordBytes: info.sizeRecordBytes, metadataBody: info.metadataBody, metadata: info.metadata)
        try emit(RawStreamEncoder.header() + RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata)) + RawStreamEncoder.metadataSegment(meta.encoded()))
        let sparse = meta.claimsSparse
        if !isDirectory {
            try emit(RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data)))
            let stored = info.storedDataLength
            let segStored = UInt64(Self.blocksPerSegment * ContentCipher.storedBlockSize)
            var off: UInt64 = 0
            var index: UInt64 = 0
            while off < stored {
                let n = Int(min(segStored, stored - off))
                let payload = try mapErrors(path, "cannot read") { try Sys.pread(fd, count: n, at: Int64(info.header.dataOffset) + Int64(off)) }
                guard payload.count == n else { throw EFSError(.ioError, "\(path) shrank during the export") }
                // Whole-hole segments are left out: the importer sees the gap and leaves a hole.
                if payload.contains(where: { $0 != 0 }) {
                    guard let plain = ContentCipher.plaintextSize(forStoredLength: UInt64(n)) else {
                        throw EFSError(.corrupt, "\(path): the data region ends inside a block")
                    }
                    let start = index * UInt64(Self.blocksPerSegment * ContentCipher.blockSize)
                    try emit(RawStreamEncoder.dataSegment(offset: start, plaintextLength: UInt32(plain), payload: payload, sparse: sparse))
                }
                off += UInt64(n)
                index += 1
            }
        }
        if !flags.contains(.dropAlternateStreams) {
            let names = ((try? Sys.listXattrs(fd)) ?? []).filter { $0.hasPrefix(NamedStreams.backingPrefix) }.sorted()
            for name in names.prefix(NamedStreams.maximumCount) {
                let value = try mapErrors(path, "cannot read extended attribute") { try Sys.getXattr(fd, name) }
                let streamName = String(name.dropFirst(NamedStreams.backingPrefix.count))
                var bytes = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named(streamName)))
                if let plain = ContentCipher.plaintextSize(forStoredLength: UInt64(value.count)) {
                    bytes += RawStreamEncoder.dataSegment(offset: 0, plaintextLength: UInt32(plain), payload: value, sparse: false)
                }
                try emit(bytes)
            }
        }
    }

    /// Exports to a file descriptor (a file, a pipe, standard output).
    public func export(to output: FileDescriptor) throws(EFSError) {
        try read { chunk in try Sys.writeAll(output, chunk) }
    }

}
