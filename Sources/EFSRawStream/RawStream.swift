// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// Constants and named limits of the MS-EFSR 2.2.3 raw data format ("EFSRPC Raw Data Format"), the bytes that
/// `ReadEncryptedFileRaw` produces and `WriteEncryptedFileRaw` consumes. `Documentation/raw-stream-format.md`.
public enum RawStream {
    /// MS-EFSR 2.2.3: the 20-byte header: `00 01 00 00`, L"ROBS", 8 reserved bytes.
    public static let headerSize = 20
    public static let version: [UInt8] = [0x00, 0x01, 0x00, 0x00]
    public static let signatureROBS = utf16("ROBS")
    /// MS-EFSR 2.2.3.1: the marshaled stream header signature.
    public static let signatureNTFS = utf16("NTFS")
    /// MS-EFSR 2.2.3.2: the stream data segment signature.
    public static let signatureGURE = utf16("GURE")
    /// MS-EFSR 2.2.3.4: the extended header signature "EXTD" (ASCII) and its length field.
    public static let signatureEXTD: [UInt8] = Array("EXTD".utf8)

    /// Fixed part of a stream header: Length, Signature, Flag, Reserved, NameLength.
    public static let streamHeaderFixedSize = 28
    /// GURE segment header: Length, Signature, Reserved.
    public static let segmentHeaderSize = 16
    /// The metadata stream's name: the 16-bit value 0x1910, little-endian.
    public static let metadataStreamName: [UInt8] = [0x10, 0x19]
    /// The byte-swapped form some writers use; accepted on read.
    public static let metadataStreamNameSwapped: [UInt8] = [0x19, 0x10]
    /// L"::$DATA", the unnamed data stream (14 bytes; 16 with a terminating NUL is accepted).
    public static let dataStreamName = utf16("::$DATA")
    /// Total size of a data segment's header (GURE header + Data Segment Encryption Header + padding) as written.
    public static let dataSegmentHeaderSize = 512
    /// Value of the encryption header's Length field as written (from StartingFileOffset to the end of the header).
    public static let encryptionHeaderLength: UInt32 = 0x1F0

    // MARK: - Named maximums (every length and count read is checked against one of these)

    /// Longest stream name accepted, in bytes of UTF-16 (`:` + 255 UTF-8 bytes of xattr name at worst + `:$DATA`).
    public static let maximumNameLength = 2 * 512
    /// Most streams in one object (metadata + data + named streams).
    public static let maximumStreams = 4_098
    /// Largest metadata payload accepted (our metadata: header, size records and one slot).
    public static let maximumMetadataPayload = 4 * 1_048_576 + 8_192
    /// Smallest metadata payload accepted. Windows requires `$EFS` > 0x54 bytes.
    public static let minimumMetadataPayload = 0x55
    /// Largest data segment accepted (header + data). Windows writes at most 0x10200.
    public static let maximumSegmentLength = 1_048_576 + dataSegmentHeaderSize
    /// Largest encryption header Length field accepted.
    public static let maximumEncryptionHeaderLength = 4_096
    /// Most entries in DataBlockSizes.
    public static let maximumDataBlocks = 256
    /// Largest single named stream (extended attribute value, stored form).
    public static let maximumNamedStreamSize = 1_048_576

    /// UTF-16LE bytes of an ASCII/BMP string.
    public static func utf16(_ s: String) -> [UInt8] {
        s.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    /// The stream name of a named stream: L":name:$DATA".
    public static func namedStreamName(_ name: String) -> [UInt8] { utf16(":\(name):$DATA") }
}

/// What a marshaled stream is.
public enum RawStreamKind: Sendable, Hashable {
    /// Stream #0: the EFS metadata (`$EFS` on Windows; our file metadata here).
    case metadata
    /// The unnamed data stream `::$DATA`.
    case data
    /// A named stream `:name:$DATA` (an alternate data stream on Windows; an extended attribute here).
    case named(String)
}

/// A marshaled stream header (MS-EFSR 2.2.3.1).
public struct RawStreamHeader: Sendable, Hashable {
    public var kind: RawStreamKind
    /// 0: encrypted with the FEK. 1: "FEK encryption not present".
    public var flag: UInt32

    public init(kind: RawStreamKind, flag: UInt32 = 0) {
        self.kind = kind
        self.flag = flag
    }
}

/// The Data Segment Encryption Header of a data segment (MS-EFSR 2.2.3.3), with the optional extended header.
public struct DataSegmentHeader: Sendable, Hashable {
    public var startingFileOffset: UInt64
    public var bytesWithinStreamSize: UInt32
    public var bytesWithinVDL: UInt32
    public var dataUnitShift: UInt8
    public var chunkShift: UInt8
    public var clusterShift: UInt8
    public var dataBlockSizes: [UInt32]
    /// MS-EFSR 2.2.3.4 `EXTD` flags (bit 0: the stream is in a sparse file); nil when absent.
    public var extendedFlags: UInt32?

    public init(startingFileOffset: UInt64, bytesWithinStreamSize: UInt32, bytesWithinVDL: UInt32, dataUnitShift: UInt8,
                chunkShift: UInt8, clusterShift: UInt8, dataBlockSizes: [UInt32], extendedFlags: UInt32?) {
        self.startingFileOffset = startingFileOffset
        self.bytesWithinStreamSize = bytesWithinStreamSize
        self.bytesWithinVDL = bytesWithinVDL
        self.dataUnitShift = dataUnitShift
        self.chunkShift = chunkShift
        self.clusterShift = clusterShift
        self.dataBlockSizes = dataBlockSizes
        self.extendedFlags = extendedFlags
    }

    /// Sum of the data block sizes: the payload bytes that follow the header.
    public var payloadLength: UInt64 { dataBlockSizes.reduce(0) { $0 + UInt64($1) } }
}

/// One structure decoded from a raw stream.
public enum RawRecord: Sendable, Equatable {
    /// The stream header was read and checked.
    case header
    /// A marshaled stream begins.
    case stream(RawStreamHeader)
    /// The metadata stream's payload (exactly one per object).
    case metadata([UInt8])
    /// A data segment of the current data or named stream. `header` is nil for streams with Flag = 1.
    case segment(DataSegmentHeader?, payload: [UInt8])
}
