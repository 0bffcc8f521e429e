// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream

/// A Windows EFS object (file or directory) held in memory: its `$EFS` metadata and its encrypted streams, read from
/// a Windows raw stream (ROBS, `raw-stream-format.md` §3) or from ntfs-3g's `efs_raw` + `$EFS` pair
/// (`windows-efs-metadata.md` §4.7), and written back as a Windows raw stream.
///
/// For large inputs drive ``RawStreamDecoder`` (``WindowsRawObject/makeDecoder()``) and
/// ``WindowsSegmentDecryptor`` directly instead; this type is the whole-object convenience over them.
///
/// ```swift
/// let object = try WindowsRawObject.parse(robsBytes)
/// let (fek, _) = try object.metadata.unwrapFEK(using: key, thumbprint: cert.thumbprint.bytes)
/// let plain = try object.decrypt(object.streams[0], cipher: WindowsDataCipher(fek: fek))
/// ```
public struct WindowsRawObject: Sendable {
    /// One data segment: the Data Segment Encryption Header (nil for a stream with Flag = 1) and its payload.
    public struct Segment: Sendable, Hashable {
        public var header: DataSegmentHeader?
        public var payload: [UInt8]

        public init(header: DataSegmentHeader?, payload: [UInt8]) {
            self.header = header
            self.payload = payload
        }
    }

    /// A data stream (`::$DATA`) or named stream (an alternate data stream `:name:$DATA`).
    public struct Stream: Sendable, Hashable {
        public var kind: RawStreamKind
        /// MS-EFSR 2.2.3.1 Flag: 0 = encrypted with the FEK, 1 = "FEK encryption not present".
        public var flag: UInt32
        public var segments: [Segment]

        public init(kind: RawStreamKind, flag: UInt32 = 0, segments: [Segment]) {
            self.kind = kind
            self.flag = flag
            self.segments = segments
        }

        public var isEncrypted: Bool { flag == 0 }

        /// The stream size: the end of the furthest segment (encrypted), or the payload total (Flag = 1).
        public var size: UInt64 {
            var end: UInt64 = 0
            for s in segments {
                if let h = s.header {
                    end = max(end, h.startingFileOffset &+ UInt64(h.bytesWithinStreamSize))
                } else {
                    end &+= UInt64(s.payload.count)
                }
            }
            return end
        }

        /// The stream's display name: "::$DATA" or the alternate data stream's name.
        public var name: String {
            switch kind {
            case .data: "::$DATA"
            case .named(let n): n
            case .metadata: "$EFS"
            }
        }
    }

    /// The `$EFS` bytes exactly as received.
    public var metadataBytes: [UInt8]
    /// The parsed `$EFS`.
    public var metadata: WindowsEFSMetadata
    /// The data and named streams, in stream order.
    public var streams: [Stream]

    public init(metadataBytes: [UInt8], streams: [Stream]) throws(FormatError) {
        self.metadataBytes = metadataBytes
        self.metadata = try WindowsEFSMetadata.parse(metadataBytes)
        self.streams = streams
    }

    /// Largest named stream accepted from a Windows raw stream (alternate data streams can be as large as files).
    public static let maximumNamedStreamSize = Limits.maximumPlaintextSize

    /// A raw-stream decoder configured for Windows input (large named streams).
    public static func makeDecoder() -> RawStreamDecoder {
        RawStreamDecoder(maximumNamedStreamSize: maximumNamedStreamSize)
    }

    // MARK: - Reading

    /// Parses a whole Windows raw stream (ROBS).
    ///
    /// - Throws: ``FormatError`` (raw-stream errors are mapped: bad signatures → `.badMagic`, truncation →
    ///   `.truncated`, limits → `.limitExceeded`, order and fields → `.malformed`), and the errors of
    ///   ``WindowsEFSMetadata/parse(_:)`` for the metadata stream.
    public static func parse(_ bytes: [UInt8]) throws(FormatError) -> WindowsRawObject {
        var decoder = makeDecoder()
        var buffer = RawInputBuffer(bytes)
        var metadata: [UInt8]?
        var streams: [Stream] = []
        do throws(RawStreamError) {
            while let record = try decoder.next(from: &buffer) {
                switch record {
                case .header: break
                case .stream(let h):
                    if h.kind != .metadata { streams.append(Stream(kind: h.kind, flag: h.flag, segments: [])) }
                case .metadata(let m): metadata = m
                case .segment(let h, let payload):
                    // The decoder only returns segments after a data or named stream header.
                    guard !streams.isEmpty else {
                        throw RawStreamError(.badOrder, "a segment outside a data stream", at: decoder.offset)
                    }
                    if let h {
                        // The block layout must describe the segment's data (MS-EFSR 2.2.3.3); checked without a key.
                        do throws(FormatError) {
                            _ = try WindowsSegmentDecryptor.blocks(of: h)
                        } catch {
                            throw RawStreamError(.malformed, error.message, at: decoder.offset)
                        }
                    }
                    streams[streams.count - 1].segments.append(Segment(header: h, payload: payload))
                }
            }
            try decoder.finish(buffer)
        } catch {
            throw FormatError(rawStream: error)
        }
        guard let metadata else { throw FormatError(.truncated, "the raw stream has no metadata stream") }
        return try WindowsRawObject(metadataBytes: metadata, streams: streams)
    }

    /// An object from ntfs-3g's representation: the `efs_raw` bytes of the unnamed data stream and the `$EFS`
    /// bytes (the `system.ntfs_efsinfo` extended attribute). The data becomes 64 KiB segments as Windows writes them.
    public static func fromNTFS3G(efsRaw: [UInt8], efsInfo: [UInt8]) throws(FormatError) -> WindowsRawObject {
        let (ciphertext, size) = try NTFS3GEfsRaw.parse(efsRaw)
        let stream = try Stream(kind: .data, segments: segments(ciphertext: ciphertext, size: size))
        return try WindowsRawObject(metadataBytes: efsInfo, streams: [stream])
    }

    /// A new object: `metadata` and each stream's plaintext encrypted under `fek` (§4.5) and cut into 64 KiB
    /// segments, ready for ``encode()``. For large streams use ``WindowsDataEncryptor`` and ``segments(ciphertext:size:sparse:clusterShift:)``.
    ///
    /// - Throws: the errors of ``WindowsEFSMetadata/encode()`` and ``WindowsDataCipher``.
    public static func encrypting(
        metadata: WindowsEFSMetadata, fek: WindowsFEK, streams: [(kind: RawStreamKind, plaintext: [UInt8])]
    ) throws(FormatError) -> WindowsRawObject {
        let cipher = try WindowsDataCipher(fek: fek)
        var out: [Stream] = []
        for s in streams {
            guard s.kind != .metadata else {
                throw FormatError(.malformed, "a data stream cannot be the metadata stream")
            }
            var e = WindowsDataEncryptor(cipher: cipher)
            let ciphertext = try e.encrypt(s.plaintext) + e.finish()
            out.append(
                Stream(kind: s.kind, segments: try segments(ciphertext: ciphertext, size: UInt64(s.plaintext.count))))
        }
        return try WindowsRawObject(metadataBytes: metadata.encode(), streams: out)
    }

    // MARK: - Decrypting

    /// Decrypts a whole stream into memory, zero-filling holes.
    ///
    /// - Parameter maximumSize: refuse streams larger than this (in-memory use only).
    /// - Throws: `.limitExceeded` above `maximumSize`, and the errors of ``WindowsSegmentDecryptor``.
    public func decrypt(
        _ stream: Stream, cipher: WindowsDataCipher, maximumSize: UInt64 = 1 << 32
    ) throws(FormatError) -> [UInt8] {
        let size = stream.size
        guard size <= maximumSize, let n = Int(exactly: size) else {
            throw FormatError(
                .limitExceeded,
                "the stream \(stream.name) is \(size) bytes, above \(maximumSize) for in-memory decryption")
        }
        guard stream.isEncrypted else { return stream.segments.flatMap(\.payload) }
        var out = [UInt8](repeating: 0, count: n)
        var d = WindowsSegmentDecryptor(cipher: cipher)
        for s in stream.segments {
            guard let h = s.header else {
                throw FormatError(.malformed, "an encrypted stream segment has no encryption header")
            }
            for e in try d.decrypt(h, payload: s.payload) {
                let at = Int(e.offset)  // e.offset + count ≤ size = n, checked by the segment decryptor's bounds
                out.replaceSubrange(at..<(at + e.bytes.count), with: e.bytes)
            }
        }
        return out
    }

    // MARK: - Writing

    /// Plaintext bytes per data segment, as Windows writes them (`raw-stream-format.md` §3.4: at most 65,536).
    public static let segmentDataSize = 65_536

    /// Cuts a stream's ciphertext (`size` rounded up to 512) into 64 KiB segments with one data block each.
    public static func segments(
        ciphertext: some Collection<UInt8>, size: UInt64, sparse: Bool = false, clusterShift: UInt8 = 12
    ) throws(FormatError) -> [Segment] {
        guard let rounded = WindowsEFS.roundedToUnit(size), UInt64(ciphertext.count) == rounded else {
            throw FormatError(.malformed, "\(ciphertext.count) ciphertext bytes do not hold \(size) bytes of data")
        }
        let bytes = Array(ciphertext)
        var out: [Segment] = []
        var offset = 0
        while offset < bytes.count {
            let plain = min(segmentDataSize, Int(size) - offset)
            let header = segmentHeader(
                offset: UInt64(offset), size: plain, sparse: sparse, clusterShift: clusterShift)
            let cipherCount = Int(header.dataBlockSizes[0])
            out.append(Segment(header: header, payload: Array(bytes[offset..<(offset + cipherCount)])))
            offset += cipherCount
        }
        return out
    }

    /// The header Windows writes for `size` bytes (at most ``segmentDataSize``) of stream data at `offset`
    /// (raw §3.4, §3.5; MS-EFSR 2.2.3.3): one data block of the data rounded up to 512, DataUnitShift = ChunkShift =
    /// log2 of that rounded up to a power of two (at least 9), EXTD present.
    public static func segmentHeader(
        offset: UInt64, size: Int, sparse: Bool = false, clusterShift: UInt8 = 12
    ) -> DataSegmentHeader {
        let cipherCount = (size + WindowsEFS.unitSize - 1) / WindowsEFS.unitSize * WindowsEFS.unitSize
        var shift: UInt8 = 9
        while (1 << Int(shift)) < cipherCount { shift += 1 }
        return DataSegmentHeader(
            startingFileOffset: offset, bytesWithinStreamSize: UInt32(size), bytesWithinVDL: UInt32(size),
            dataUnitShift: shift, chunkShift: shift, clusterShift: clusterShift,
            dataBlockSizes: [UInt32(cipherCount)],
            extendedFlags: sparse ? 1 : 0)
    }

    /// Writes the object as a Windows raw stream: the ROBS header, the metadata stream (one GURE segment holding
    /// ``metadataBytes``), then each stream's header and segments (`Documentation/windows-format.md` §4).
    public func encode() throws(FormatError) -> [UInt8] {
        guard metadataBytes.count <= WindowsEFS.maximumMetadataLength else {
            throw .limitExceeded(
                "$EFS size", value: UInt64(metadataBytes.count), maximum: WindowsEFS.maximumMetadataLength)
        }
        var out = RawStreamEncoder.header()
        out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata))
        out += RawStreamEncoder.metadataSegment(metadataBytes)
        for s in streams {
            if case .named(let n) = s.kind, RawStream.namedStreamName(n).count > RawStream.maximumNameLength {
                throw FormatError(.limitExceeded, "the stream name \(n) is too long")
            }
            out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: s.kind, flag: s.flag))
            for seg in s.segments {
                if let h = seg.header {
                    guard UInt64(seg.payload.count) == h.payloadLength else {
                        throw FormatError(
                            .malformed,
                            "a segment holds \(seg.payload.count) bytes but its block sizes add up to \(h.payloadLength)"
                        )
                    }
                    _ = try WindowsSegmentDecryptor.blocks(of: h)
                    try Self.appendSegment(to: &out, h, payload: seg.payload)
                } else {
                    // Flag = 1: a GURE segment without an encryption header.
                    var w = ByteWriter()
                    w.write(UInt32(RawStream.segmentHeaderSize + seg.payload.count))
                    w.write(bytes: RawStream.signatureGURE)
                    w.write(UInt32(0))
                    out += w.bytes + seg.payload
                }
            }
        }
        return out
    }

    /// Most data blocks in one written segment header: 0x1C + 4n bytes and the 16-byte `EXTD` must fit the
    /// encryption header's 0x1F0 bytes.
    public static let maximumWrittenDataBlocks = 116

    /// Appends one data segment (MS-EFSR 2.2.3.2–2.2.3.4) with every field of `h` as given: the 16-byte GURE header,
    /// the encryption header (Length 0x1F0, so the whole header is 512 bytes), `EXTD` when `h.extendedFlags` is set,
    /// zero fill to +0x200, then `payload`.
    static func appendSegment(to out: inout [UInt8], _ h: DataSegmentHeader, payload: [UInt8]) throws(FormatError) {
        guard !h.dataBlockSizes.isEmpty, h.dataBlockSizes.count <= maximumWrittenDataBlocks else {
            throw FormatError(
                .limitExceeded,
                "a segment of \(h.dataBlockSizes.count) data blocks (1…\(maximumWrittenDataBlocks) are written)")
        }
        guard payload.count <= RawStream.maximumSegmentLength - RawStream.dataSegmentHeaderSize else {
            throw FormatError(.limitExceeded, "a segment of \(payload.count) bytes is too large")
        }
        var w = ByteWriter(capacity: RawStream.dataSegmentHeaderSize)
        w.write(UInt32(RawStream.dataSegmentHeaderSize + payload.count))  // GURE Length
        w.write(bytes: RawStream.signatureGURE)
        w.write(UInt32(0))  // Reserved
        w.write(h.startingFileOffset)  // +0x10 StartingFileOffset
        w.write(RawStream.encryptionHeaderLength)  // +0x18 Length (0x1F0)
        w.write(h.bytesWithinStreamSize)  // +0x1C
        w.write(h.bytesWithinVDL)  // +0x20
        w.write(UInt16(0))  // +0x24 CompressionFormat NONE
        w.write(h.dataUnitShift)  // +0x26
        w.write(h.chunkShift)  // +0x27
        w.write(h.clusterShift)  // +0x28
        w.write(UInt8(1))  // +0x29 EncryptionFormat DEFAULT
        w.write(UInt16(h.dataBlockSizes.count))  // +0x2A NumberOfDataBlocks
        for size in h.dataBlockSizes { w.write(size) }  // +0x2C DataBlockSizes[]
        if let flags = h.extendedFlags {
            // MS-EFSR 2.2.3.4 extended header.
            w.write(bytes: RawStream.signatureEXTD)
            w.write(UInt32(16))
            w.write(flags)
            w.write(UInt32(0))
        }
        w.writeZeros(RawStream.dataSegmentHeaderSize - w.bytes.count)
        out += w.bytes
        out += payload
    }

    /// The ntfs-3g representation of the unnamed data stream: `efs_raw` bytes and the `$EFS` for
    /// `system.ntfs_efsinfo`. ntfs-3g refuses files whose valid data length differs from their size (§4.7).
    public func toNTFS3G() throws(FormatError) -> (efsRaw: [UInt8], efsInfo: [UInt8]) {
        guard let data = streams.first(where: { $0.kind == .data }) else { return ([0, 0], metadataBytes) }
        guard data.isEncrypted else { throw FormatError(.malformed, "the data stream is not encrypted") }
        var ciphertext: [UInt8] = []
        var expected: UInt64 = 0
        for (i, s) in data.segments.enumerated() {
            // Only the last segment may end inside a unit: efs_raw has no room for a partial unit elsewhere.
            guard let h = s.header, h.dataBlockSizes.count == 1, h.startingFileOffset == expected,
                h.bytesWithinVDL == h.bytesWithinStreamSize,
                UInt64(s.payload.count) == WindowsEFS.roundedToUnit(UInt64(h.bytesWithinStreamSize)),
                UInt64(h.bytesWithinStreamSize) == UInt64(s.payload.count) || i == data.segments.count - 1
            else {
                throw FormatError(
                    .malformed, "efs_raw needs contiguous, non-sparse data with the valid data length equal to the size"
                )
            }
            ciphertext += s.payload
            expected = h.startingFileOffset + UInt64(s.payload.count)
        }
        return (try NTFS3GEfsRaw.encode(ciphertext: ciphertext, size: data.size), metadataBytes)
    }
}

extension FormatError {
    /// Maps a raw-stream decoding error onto the format error codes, keeping its message and offset.
    public init(rawStream e: RawStreamError) {
        let code: FormatError.Code
        switch e.code {
        case .truncated: code = .truncated
        case .badSignature: code = .badMagic
        case .limitExceeded: code = .limitExceeded
        case .badOrder, .malformed: code = .malformed
        }
        self.init(code, e.description)
    }
}
