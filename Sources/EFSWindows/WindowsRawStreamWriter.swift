// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream

/// A sans-I/O writer of a Windows raw stream (ROBS) that never holds more than one 64 KiB segment: the same bytes
/// ``WindowsRawObject/encode()`` writes for an object made by ``WindowsRawObject/encrypting(metadata:fek:streams:)``,
/// for inputs too large to hold in memory.
///
/// ```swift
/// var out = try WindowsRawStreamWriter.begin(metadata: metadataBytes)
/// var w = try WindowsRawStreamWriter(kind: .data, cipher: cipher)
/// out += w.streamHeader()
/// out += try w.write(plaintext)
/// out += try w.finish()
/// ```
public struct WindowsRawStreamWriter: Sendable {
    let kind: RawStreamKind
    let cipher: WindowsDataCipher
    var pending: [UInt8] = []
    /// Stream offset of the first byte in `pending`.
    var offset: UInt64 = 0

    /// The ROBS header and the metadata stream holding `metadata` (the `$EFS` bytes).
    ///
    /// - Throws: `.limitExceeded` when `metadata` is above the `$EFS` maximum.
    public static func begin(metadata: [UInt8]) throws(FormatError) -> [UInt8] {
        guard metadata.count <= WindowsEFS.maximumMetadataLength else {
            throw .limitExceeded("$EFS size", value: UInt64(metadata.count), maximum: WindowsEFS.maximumMetadataLength)
        }
        return RawStreamEncoder.header() + RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata))
            + RawStreamEncoder.metadataSegment(metadata)
    }

    /// A writer of one data or named stream, encrypted with `cipher`.
    ///
    /// - Throws: `.malformed` for the metadata kind; `.limitExceeded` for a stream name that is too long.
    public init(kind: RawStreamKind, cipher: WindowsDataCipher) throws(FormatError) {
        switch kind {
        case .metadata: throw FormatError(.malformed, "a data stream cannot be the metadata stream")
        case .named(let n):
            guard RawStream.namedStreamName(n).count <= RawStream.maximumNameLength else {
                throw FormatError(.limitExceeded, "the stream name \(n) is too long")
            }
        case .data: break
        }
        self.kind = kind
        self.cipher = cipher
    }

    /// The stream header; write it first.
    public func streamHeader() -> [UInt8] { RawStreamEncoder.streamHeader(RawStreamHeader(kind: kind)) }

    /// Appends plaintext; returns the bytes of every 64 KiB segment it completes.
    public mutating func write(_ plaintext: some Collection<UInt8>) throws(FormatError) -> [UInt8] {
        pending.append(contentsOf: plaintext)
        var out: [UInt8] = []
        while pending.count >= WindowsRawObject.segmentDataSize {
            out += try segment(WindowsRawObject.segmentDataSize)
        }
        return out
    }

    /// Writes the last, partial segment (its final unit zero-filled), if any.
    public mutating func finish() throws(FormatError) -> [UInt8] {
        pending.isEmpty ? [] : try segment(pending.count)
    }

    /// The stream size so far.
    public var size: UInt64 { offset + UInt64(pending.count) }

    private mutating func segment(_ n: Int) throws(FormatError) -> [UInt8] {
        guard offset.addingReportingOverflow(UInt64(n)).partialValue <= Limits.maximumPlaintextSize else {
            throw FormatError(.limitExceeded, "the stream is too large")
        }
        let header = WindowsRawObject.segmentHeader(offset: offset, size: n)
        var plain = Array(pending[0..<n])
        plain += [UInt8](repeating: 0, count: Int(header.dataBlockSizes[0]) - n)
        let ciphertext = try cipher.encrypt(plain, offset: offset)
        pending.removeFirst(n)
        offset += UInt64(n)
        var out: [UInt8] = []
        try WindowsRawObject.appendSegment(to: &out, header, payload: ciphertext)
        return out
    }
}
