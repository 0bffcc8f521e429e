// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream

/// Checks one raw stream the way an import would, without any key and without writing anything: the MS-EFSR
/// framing (``RawStreamDecoder``), the metadata (``RawMetadata``), and the swift-efs layout rules the importer
/// applies (one block size per segment on block boundaries, a partial block only at the end, named streams as one
/// segment at offset 0, a directory without a data stream). Fed in bounded chunks; holds one segment at most.
struct RawStreamCheck {
    let isDirectory: Bool
    var decoder = RawStreamDecoder()
    var buffer = RawInputBuffer()
    var meta: RawMetadata?
    var current: RawStreamHeader?
    var storedEnd: UInt64 = 0
    var endedWithPartialBlock = false
    var namedCount = 0
    var namedValueSize = 0
    /// Streams seen by kind, for the summary.
    var dataSegments = 0

    init(isDirectory: Bool) { self.isDirectory = isDirectory }

    mutating func feed(_ chunk: [UInt8]) throws(EFSError) {
        buffer.append(chunk)
        do {
            while let record = try decoder.next(from: &buffer) { try handle(record) }
        } catch {
            throw EFSError(.notExportFormat, "\(error)", cause: error)
        }
    }

    mutating func finish() throws(EFSError) {
        do { try decoder.finish(buffer) } catch { throw EFSError(.notExportFormat, "\(error)", cause: error) }
        try flushNamed()
        guard let meta else { throw EFSError(.notExportFormat, "the raw stream has no metadata stream") }
        if !isDirectory {
            let needed = ContentCipher.storedLength(forPlaintextSize: meta.claimedPlaintextSize)
            if storedEnd < needed {
                guard meta.claimsSparse, !endedWithPartialBlock || storedEnd == 0 else {
                    throw EFSError(.notExportFormat, "the raw stream is truncated: the file should hold \(meta.claimedPlaintextSize) bytes")
                }
            }
        }
    }

    mutating func handle(_ record: RawRecord) throws(EFSError) {
        switch record {
        case .header:
            break
        case .metadata(let bytes):
            do { meta = try RawMetadata(decoding: bytes) } catch {
                throw EFSError(.notExportFormat, "the metadata stream is not swift-efs metadata: \(error.message)", cause: error)
            }
        case .stream(let h):
            try flushNamed()
            current = h
            if h.kind == .data, isDirectory { throw EFSError(.notExportFormat, "a directory's raw stream has a data stream") }
            if h.kind == .data, meta == nil { throw EFSError(.notExportFormat, "data before the metadata stream") }
            if h.flag != 0, h.kind != .metadata {
                throw EFSError(.notExportFormat, "a stream without FEK encryption (Flag 1): a raw stream never carries plaintext")
            }
        case .segment(let seg, let payload):
            guard let seg, let cur = current else { throw EFSError(.notExportFormat, "a segment without an encryption header") }
            switch cur.kind {
            case .data:
                guard seg.dataBlockSizes.count == 1, seg.startingFileOffset % UInt64(ContentCipher.blockSize) == 0 else {
                    throw EFSError(.notExportFormat, "a data segment is not laid out in swift-efs blocks")
                }
                guard !endedWithPartialBlock else { throw EFSError(.notExportFormat, "data follows a partial last block") }
                guard let plain = ContentCipher.plaintextSize(forStoredLength: UInt64(payload.count)),
                    plain == UInt64(seg.bytesWithinStreamSize)
                else { throw EFSError(.notExportFormat, "a data segment's size does not match its blocks") }
                let storedOffset = seg.startingFileOffset / UInt64(ContentCipher.blockSize) * UInt64(ContentCipher.storedBlockSize)
                storedEnd = storedOffset + UInt64(payload.count)
                endedWithPartialBlock = payload.count % ContentCipher.storedBlockSize != 0
                dataSegments += 1
            case .named:
                guard seg.startingFileOffset == 0, namedValueSize == 0, payload.count <= RawStream.maximumNamedStreamSize else {
                    throw EFSError(.notExportFormat, "a named stream must be one segment at offset 0")
                }
                namedValueSize = payload.count
            case .metadata:
                throw EFSError(.notExportFormat, "unexpected metadata segment")
            }
        }
    }

    mutating func flushNamed() throws(EFSError) {
        if let cur = current, case .named(let name) = cur.kind {
            guard namedCount < NamedStreams.maximumCount else { throw EFSError(.notExportFormat, "too many named streams") }
            guard namedValueSize > 0 else { throw EFSError(.notExportFormat, "the named stream '\(name)' is empty") }
            guard !name.contains("/"), name.utf8.count + NamedStreams.backingPrefix.utf8.count <= 255 else {
                throw EFSError(.notExportFormat, "bad named stream name")
            }
            namedCount += 1
        }
        namedValueSize = 0
    }
}
