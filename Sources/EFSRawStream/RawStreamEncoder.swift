// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// Builds the pieces of a raw stream. It does no I/O: callers concatenate the pieces in order and send them on.
///
/// ```swift
/// var out = RawStreamEncoder.header()
/// out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata))
/// out += RawStreamEncoder.metadataSegment(metadata)
/// ```
public enum RawStreamEncoder {
    /// MS-EFSR 2.2.3: `00 01 00 00`, L"ROBS", 8 zero bytes.
    public static func header() -> [UInt8] {
        RawStream.version + RawStream.signatureROBS + [UInt8](repeating: 0, count: 8)
    }

    /// MS-EFSR 2.2.3.1: Length (= 28 + NameLength), L"NTFS", Flag, 8 reserved, NameLength, Name.
    public static func streamHeader(_ h: RawStreamHeader) -> [UInt8] {
        let name: [UInt8]
        switch h.kind {
        case .metadata: name = RawStream.metadataStreamName
        case .data: name = RawStream.dataStreamName
        case .named(let n): name = RawStream.namedStreamName(n)
        }
        precondition(name.count <= RawStream.maximumNameLength, "stream name too long")
        var w = ByteWriter(capacity: RawStream.streamHeaderFixedSize + name.count)
        w.write(UInt32(RawStream.streamHeaderFixedSize + name.count))
        w.write(bytes: RawStream.signatureNTFS)
        w.write(h.kind == .metadata ? 0 : h.flag)
        w.writeZeros(8)
        w.write(UInt32(name.count))
        w.write(bytes: name)
        return w.bytes
    }

    /// MS-EFSR 2.2.3.2: the metadata stream's single GURE segment, no encryption header.
    public static func metadataSegment(_ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= RawStream.maximumMetadataPayload)
        var w = ByteWriter(capacity: RawStream.segmentHeaderSize + payload.count)
        w.write(UInt32(RawStream.segmentHeaderSize + payload.count))
        w.write(bytes: RawStream.signatureGURE)
        w.write(UInt32(0))
        w.write(bytes: payload)
        return w.bytes
    }

    /// MS-EFSR 2.2.3.2–2.2.3.4: a data segment with a 512-byte header (GURE header, Data Segment Encryption Header
    /// with one data block, `EXTD` extended header, zero padding) followed by `payload`.
    ///
    /// - Parameters:
    ///   - offset: StartingFileOffset, a multiple of 512.
    ///   - plaintextLength: BytesWithinStreamSize (and BytesWithinVDL).
    ///   - sparse: the EXTD flag "stream is in a sparse file".
    public static func dataSegment(offset: UInt64, plaintextLength: UInt32, payload: some Collection<UInt8>, sparse: Bool, clusterShift: UInt8 = 12) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(RawStream.dataSegmentHeaderSize + payload.count)
        appendDataSegment(to: &out, offset: offset, plaintextLength: plaintextLength, payload: payload, sparse: sparse, clusterShift: clusterShift)
        return out
    }

    /// Appends a data segment to `out` (the header, then `payload` copied once).
    public static func appendDataSegment(to out: inout [UInt8], offset: UInt64, plaintextLength: UInt32, payload: some Collection<UInt8>, sparse: Bool, clusterShift: UInt8 = 12) {
        precondition(offset % 512 == 0 && payload.count + RawStream.dataSegmentHeaderSize <= RawStream.maximumSegmentLength)
        let rounded = (payload.count + 511) / 512 * 512
        var shift: UInt8 = 9
        while (1 << Int(shift)) < rounded { shift += 1 }
        var w = ByteWriter(capacity: RawStream.dataSegmentHeaderSize)
        w.write(UInt32(RawStream.dataSegmentHeaderSize + payload.count))
        w.write(bytes: RawStream.signatureGURE)
        w.write(UInt32(0))
        w.write(offset)  // StartingFileOffset
        w.write(RawStream.encryptionHeaderLength)  // Length
        w.write(plaintextLength)  // BytesWithinStreamSize
        w.write(plaintextLength)  // BytesWithinVDL
        w.write(UInt16(0))  // CompressionFormat NONE
        w.write(shift)  // DataUnitShift
        w.write(shift)  // ChunkShift
        w.write(clusterShift)
        w.write(UInt8(1))  // EncryptionFormat DEFAULT
        w.write(UInt16(1))  // NumberOfDataBlocks
        w.write(UInt32(payload.count))  // DataBlockSizes[0]
        w.write(bytes: RawStream.signatureEXTD)
        w.write(UInt32(16))
        w.write(UInt32(sparse ? 1 : 0))
        w.write(UInt32(0))
        w.writeZeros(RawStream.dataSegmentHeaderSize - w.bytes.count)
        out.append(contentsOf: w.bytes)
        out.append(contentsOf: payload)
    }
}
