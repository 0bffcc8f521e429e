// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// Bytes received but not yet decoded. Appending and consuming never copy more than the unread part.
public struct RawInputBuffer: Sendable {
    var storage: [UInt8] = []
    var start = 0

    public init() {}
    public init(_ bytes: [UInt8]) { storage = bytes }

    public var readableCount: Int { storage.count - start }
    public var isEmpty: Bool { readableCount == 0 }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    func peek(_ count: Int) -> ArraySlice<UInt8>? {
        guard readableCount >= count else { return nil }
        return storage[start..<(start + count)]
    }

    mutating func consume(_ count: Int) -> [UInt8] {
        let out = Array(storage[start..<(start + count)])
        start += count
        return out
    }
}

/// A sans-I/O single-step decoder of the MS-EFSR raw stream.
///
/// Feed bytes into a ``RawInputBuffer`` and call ``next(from:)`` until it returns nil ("need more"); call
/// ``finish(_:)`` at end of input. It is strict where MS-EFSR says MUST (signatures, order, lengths that add up),
/// tolerant where Windows varies (reserved fields, a 16-byte `::$DATA` name, a byte-swapped metadata name, an
/// absent `EXTD`), and bounded everywhere by ``RawStream``'s named maximums.
///
/// ```swift
/// var decoder = RawStreamDecoder()
/// var buffer = RawInputBuffer()
/// buffer.append(chunk)
/// while let record = try decoder.next(from: &buffer) { handle(record) }
/// try decoder.finish(buffer)
/// ```
public struct RawStreamDecoder: Sendable {
    enum State: Sendable { case header, structure, done }

    var state = State.header
    /// Bytes consumed so far (for error positions).
    public private(set) var offset: UInt64 = 0
    var current: RawStreamHeader?
    var sawMetadata = false
    var metadataSegments = 0
    var sawData = false
    var streamCount = 0
    var namedStreams = Set<String>()
    /// End (StartingFileOffset + BytesWithinStreamSize) of the last segment of the current stream.
    var segmentEnd: UInt64 = 0
    var segmentsInStream = 0
    /// Largest named stream accepted. Our own streams hold extended attributes (``RawStream/maximumNamedStreamSize``);
    /// a Windows stream's alternate data streams can be as large as files.
    let maximumNamedStreamSize: UInt64

    public init() { maximumNamedStreamSize = UInt64(RawStream.maximumNamedStreamSize) }

    /// A decoder that accepts named streams of up to `maximumNamedStreamSize` bytes (at most
    /// `Limits.maximumPlaintextSize`), for Windows raw streams whose named streams are alternate data streams.
    public init(maximumNamedStreamSize: UInt64) {
        self.maximumNamedStreamSize = min(maximumNamedStreamSize, Limits.maximumPlaintextSize)
    }

    func fail(_ code: RawStreamError.Code, _ message: String) -> RawStreamError { RawStreamError(code, message, at: offset) }

    /// Decodes the next complete structure, or returns nil when more bytes are needed.
    public mutating func next(from buffer: inout RawInputBuffer) throws(RawStreamError) -> RawRecord? {
        switch state {
        case .done:
            return nil
        case .header:
            guard let h = buffer.peek(RawStream.headerSize) else { return nil }
            // MS-EFSR 2.2.3: version bytes 00 01 00 00, then L"ROBS"; the 8 reserved bytes are ignored.
            guard h.prefix(4).elementsEqual(RawStream.version), h.dropFirst(4).prefix(8).elementsEqual(RawStream.signatureROBS) else {
                throw fail(.badSignature, "the stream does not start with the ROBS header")
            }
            _ = buffer.consume(RawStream.headerSize)
            offset += UInt64(RawStream.headerSize)
            state = .structure
            return .header
        case .structure:
            guard let prefix = buffer.peek(12) else { return nil }
            var r = ByteReader(prefix)
            let length = (try? r.readUInt32()) ?? 0
            let signature = Array(prefix.dropFirst(4))
            // Tell NTFS (stream header) and GURE (segment) apart by the signature at +4.
            if signature == RawStream.signatureNTFS {
                return try decodeStreamHeader(length: length, &buffer)
            } else if signature == RawStream.signatureGURE {
                return try decodeSegment(length: length, &buffer)
            }
            throw fail(.badSignature, "expected an NTFS stream header or a GURE segment")
        }
    }

    mutating func decodeStreamHeader(length: UInt32, _ buffer: inout RawInputBuffer) throws(RawStreamError) -> RawRecord? {
        let maximum = RawStream.streamHeaderFixedSize + RawStream.maximumNameLength + 8
        guard let len = Int(exactly: length), len >= RawStream.streamHeaderFixedSize, len <= maximum else {
            throw fail(.limitExceeded, "stream header length \(length) is outside \(RawStream.streamHeaderFixedSize)…\(maximum)")
        }
        guard let bytes = buffer.peek(len) else { return nil }
        var r = ByteReader(bytes)
        do {
            try r.skip(12, "length and signature")
            let flag = try r.readUInt32("flag")
            try r.skip(8, "reserved")  // MS-EFSR: reserved, ignored
            let nameLength = try r.readLength(width: 4, maximum: RawStream.maximumNameLength, "name length")
            guard RawStream.streamHeaderFixedSize + nameLength <= len else {
                throw fail(.malformed, "stream name length \(nameLength) does not fit the header length \(len)")
            }
            let name = Array(try r.readBytes(nameLength, "stream name"))
            if segmentsInStream == 0, let cur = current, cur.kind != .metadata, cur.flag == 0, case .named = cur.kind {
                _ = cur  // a named stream may be empty; nothing to check
            }
            let kind = try classify(name)
            streamCount += 1
            guard streamCount <= RawStream.maximumStreams else { throw fail(.limitExceeded, "more than \(RawStream.maximumStreams) streams") }
            switch kind {
            case .metadata:
                // MS-EFSR 2.2.3: the metadata stream is always first, and there is only one.
                guard !sawMetadata else { throw fail(.badOrder, "a second metadata stream") }
                guard streamCount == 1 else { throw fail(.badOrder, "the metadata stream is not first") }
                sawMetadata = true
            case .data:
                guard sawMetadata else { throw fail(.badOrder, "a data stream before the metadata stream") }
                guard !sawData else { throw fail(.badOrder, "a second ::$DATA stream") }
                sawData = true
            case .named(let n):
                guard sawMetadata else { throw fail(.badOrder, "a named stream before the metadata stream") }
                guard namedStreams.insert(n).inserted else { throw fail(.badOrder, "the named stream '\(n)' appears twice") }
            }
            if let cur = current, cur.kind == .metadata, metadataSegments != 1 {
                throw fail(.malformed, "the metadata stream must have exactly one segment")
            }
            _ = buffer.consume(len)
            offset += UInt64(len)
            let header = RawStreamHeader(kind: kind, flag: kind == .metadata ? 0 : flag)
            current = header
            segmentEnd = 0
            segmentsInStream = 0
            return .stream(header)
        } catch let e as RawStreamError {
            throw e
        } catch {
            throw fail(.malformed, "\(error)")
        }
    }

    func classify(_ name: [UInt8]) throws(RawStreamError) -> RawStreamKind {
        if name == RawStream.metadataStreamName || name == RawStream.metadataStreamNameSwapped { return .metadata }
        if name == RawStream.dataStreamName || name == RawStream.dataStreamName + [0, 0] { return .data }
        guard name.count % 2 == 0, !name.isEmpty else { throw fail(.malformed, "a stream name is not UTF-16") }
        var units: [UInt16] = []
        for i in stride(from: 0, to: name.count, by: 2) { units.append(UInt16(name[i]) | UInt16(name[i + 1]) << 8) }
        while units.last == 0 { units.removeLast() }
        var text = ""
        var it = units.makeIterator()
        var decoder = UTF16()
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): text.unicodeScalars.append(s)
            case .emptyInput: break loop
            case .error: throw fail(.malformed, "a stream name is not valid UTF-16")
            }
        }
        // Named streams are ":name:$DATA".
        guard text.hasPrefix(":"), text.hasSuffix(":$DATA"), text.count > 7 else {
            throw fail(.malformed, "unknown stream name '\(text)'")
        }
        let inner = String(text.dropFirst().dropLast(6))
        guard !inner.isEmpty, !inner.contains("\0") else { throw fail(.malformed, "empty or invalid stream name") }
        return .named(inner)
    }

    mutating func decodeSegment(length: UInt32, _ buffer: inout RawInputBuffer) throws(RawStreamError) -> RawRecord? {
        guard let cur = current else { throw fail(.badOrder, "a GURE segment before any stream header") }
        let maximum = cur.kind == .metadata ? RawStream.segmentHeaderSize + RawStream.maximumMetadataPayload : RawStream.maximumSegmentLength
        guard let len = Int(exactly: length), len >= RawStream.segmentHeaderSize, len <= maximum else {
            throw fail(.limitExceeded, "segment length \(length) is outside \(RawStream.segmentHeaderSize)…\(maximum)")
        }
        guard let bytes = buffer.peek(len) else { return nil }
        if cur.kind == .metadata {
            // MS-EFSR 2.2.3.2: the metadata stream is a single segment whose payload is the whole metadata.
            guard metadataSegments == 0 else { throw fail(.malformed, "the metadata stream has more than one segment") }
            let payload = Array(bytes.dropFirst(RawStream.segmentHeaderSize))
            guard payload.count >= RawStream.minimumMetadataPayload else {
                throw fail(.malformed, "the metadata is \(payload.count) bytes, below the minimum \(RawStream.minimumMetadataPayload)")
            }
            metadataSegments = 1
            _ = buffer.consume(len)
            offset += UInt64(len)
            segmentsInStream += 1
            return .metadata(payload)
        }
        if cur.flag != 0 {
            // Flag 1: "FEK encryption not present": no encryption header.
            _ = buffer.consume(len)
            offset += UInt64(len)
            segmentsInStream += 1
            return .segment(nil, payload: Array(bytes.dropFirst(RawStream.segmentHeaderSize)))
        }
        var r = ByteReader(bytes.dropFirst(RawStream.segmentHeaderSize))
        do {
            // MS-EFSR 2.2.3.3 Data Segment Encryption Header.
            let start = try r.readUInt64("StartingFileOffset")
            let headerLength = try r.readLength(width: 4, maximum: RawStream.maximumEncryptionHeaderLength, minimum: 0x20, "encryption header length")
            let within = try r.readUInt32("BytesWithinStreamSize")
            let vdl = try r.readUInt32("BytesWithinVDL")
            let compression = try r.readUInt16("CompressionFormat")
            let dataUnitShift = try r.readUInt8("DataUnitShift")
            let chunkShift = try r.readUInt8("ChunkShift")
            let clusterShift = try r.readUInt8("ClusterShift")
            let encryptionFormat = try r.readUInt8("EncryptionFormat")
            let blocks = try r.readLength(width: 2, maximum: RawStream.maximumDataBlocks, minimum: 1, "NumberOfDataBlocks")
            guard 0x1C + 4 * blocks <= headerLength else {
                throw fail(.malformed, "\(blocks) data block sizes do not fit the encryption header of \(headerLength) bytes")
            }
            var sizes: [UInt32] = []
            for _ in 0..<blocks { sizes.append(try r.readUInt32("DataBlockSizes")) }
            guard compression == 0 else { throw fail(.malformed, "compressed segments are not supported") }
            guard encryptionFormat == 1 else { throw fail(.malformed, "encryption format \(encryptionFormat) is not supported") }
            guard dataUnitShift <= 31, chunkShift <= 31, clusterShift <= 31 else { throw fail(.malformed, "a shift is above 31") }
            // Optional MS-EFSR 2.2.3.4 extended header: "EXTD", 0x10, flags, reserved.
            var extended: UInt32?
            let used = 0x1C + 4 * blocks
            if headerLength - used >= 16 {
                let ext = try r.readBytes(16, "extended header")
                if ext.prefix(4).elementsEqual(RawStream.signatureEXTD) {
                    var e = ByteReader(ext.dropFirst(4))
                    guard try e.readUInt32("EXTD length") == 16 else { throw fail(.malformed, "EXTD length is not 16") }
                    extended = try e.readUInt32("EXTD flags")
                }
            }
            let headerEnd = RawStream.segmentHeaderSize + headerLength  // Length counts from StartingFileOffset (+0x10)
            guard headerEnd <= len else { throw fail(.malformed, "the encryption header runs past the segment") }
            let payloadLength = sizes.reduce(0) { $0 + UInt64($1) }
            guard UInt64(len - headerEnd) == payloadLength else {
                throw fail(.malformed, "the segment holds \(len - headerEnd) data bytes but its block sizes add up to \(payloadLength)")
            }
            guard vdl <= within else { throw fail(.malformed, "BytesWithinVDL is above BytesWithinStreamSize") }
            // MS-EFSR: offsets are multiples of 512 and segments never go backwards or overlap.
            guard start % 512 == 0 else { throw fail(.malformed, "StartingFileOffset \(start) is not a multiple of 512") }
            guard segmentsInStream == 0 || start >= segmentEnd else {
                throw fail(.badOrder, "segment at \(start) overlaps or precedes the previous one (ending at \(segmentEnd))")
            }
            let (end, overflow) = start.addingReportingOverflow(UInt64(within))
            guard !overflow, end <= Limits.maximumPlaintextSize else { throw fail(.limitExceeded, "segment offset overflows") }
            if case .named = cur.kind, end > maximumNamedStreamSize {
                throw fail(.limitExceeded, "a named stream is larger than \(maximumNamedStreamSize) bytes")
            }
            segmentEnd = end
            segmentsInStream += 1
            _ = buffer.consume(len)
            offset += UInt64(len)
            let header = DataSegmentHeader(
                startingFileOffset: start, bytesWithinStreamSize: within, bytesWithinVDL: vdl, dataUnitShift: dataUnitShift,
                chunkShift: chunkShift, clusterShift: clusterShift, dataBlockSizes: sizes, extendedFlags: extended)
            return .segment(header, payload: Array(bytes[(bytes.startIndex + headerEnd)...]))
        } catch let e as RawStreamError {
            throw e
        } catch {
            throw fail(.truncated, "\(error)")
        }
    }

    /// Checks the end of input: nothing may be left half-read, and the metadata stream must have been seen.
    public mutating func finish(_ buffer: RawInputBuffer) throws(RawStreamError) {
        guard buffer.isEmpty else {
            throw fail(.truncated, "the stream ends inside a structure (\(buffer.readableCount) bytes left over)")
        }
        guard state == .structure else { throw fail(.truncated, "the stream ends before its header") }
        guard sawMetadata, metadataSegments == 1 else { throw fail(.truncated, "the stream has no complete metadata stream") }
        state = .done
    }
}
