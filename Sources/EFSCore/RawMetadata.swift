// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// The payload of the raw stream's metadata stream for a swift-efs object (where Windows puts `$EFS`): everything a
/// key holder needs besides the data blocks, in the on-disk encodings.
///
/// ```
/// 0    64   file header (§2), as on disk
/// 64   128  the two size-record copies (§3), as on disk
/// 192  32+L the active metadata slot (§4.1): slot header and body
/// ```
/// It carries no plaintext and no key: the size records and the metadata are authenticated with the FEK, the
/// header and slot by their checksums. `Documentation/raw-stream-format.md` §3.
public struct RawMetadata: Sendable {
    public var header: FileHeader
    public var sizeRecordBytes: [UInt8]
    public var metadataBody: [UInt8]
    public var metadata: FileMetadata

    public init(header: FileHeader, sizeRecordBytes: [UInt8], metadataBody: [UInt8], metadata: FileMetadata) {
        precondition(sizeRecordBytes.count == 128)
        self.header = header
        self.sizeRecordBytes = sizeRecordBytes
        self.metadataBody = metadataBody
        self.metadata = metadata
    }

    public func encoded() -> [UInt8] {
        header.encoded() + sizeRecordBytes + MetadataSlot.encode(body: metadataBody, generation: 1)
    }

    /// Decodes and checks the structure (no key is needed or used).
    public init(decoding bytes: [UInt8]) throws(FormatError) {
        guard bytes.count <= 192 + MetadataSlot.headerSize + Limits.maximumMetadataSize else {
            throw .limitExceeded("raw metadata", value: UInt64(bytes.count), maximum: 192 + MetadataSlot.headerSize + Limits.maximumMetadataSize)
        }
        guard bytes.count >= 192 + MetadataSlot.headerSize else { throw .truncated("raw metadata") }
        header = try FileHeader(decoding: bytes[0..<64])
        sizeRecordBytes = Array(bytes[64..<192])
        // The newest size record must exist: copy 1 (generation 1) is never empty.
        guard sizeRecordBytes[64..<128].contains(where: { $0 != 0 }) else { throw .malformed("the size records are empty") }
        guard let (_, body) = try MetadataSlot.decode(bytes[192...], capacity: Limits.maximumSlotCapacity) else {
            throw .malformed("the metadata slot is empty")
        }
        guard 192 + MetadataSlot.headerSize + body.count == bytes.count else {
            throw .trailingData("raw metadata", count: bytes.count - 192 - MetadataSlot.headerSize - body.count)
        }
        metadataBody = body
        metadata = try FileMetadata(decoding: body)
        guard metadata.fileID == header.fileID else { throw .malformed("metadata belongs to another file (file id mismatch)") }
    }

    /// The larger plaintext size claimed by the two size records, read without the key (for consistency checks
    /// only: the reader authenticates the real one).
    public var claimedPlaintextSize: UInt64 {
        max(UInt64.littleEndian(sizeRecordBytes[8..<16]), UInt64.littleEndian(sizeRecordBytes[72..<80]))
    }

    /// Whether either size record claims the file is sparse (unauthenticated hint).
    public var claimsSparse: Bool { sizeRecordBytes[16] & 1 != 0 || sizeRecordBytes[80] & 1 != 0 }
}
