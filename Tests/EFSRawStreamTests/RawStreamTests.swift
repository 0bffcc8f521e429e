// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Testing

/// A stream with metadata, a data stream of three segments (one skipped: a hole) and two named streams.
func sampleStream(metadata: [UInt8] = [UInt8](repeating: 0xAB, count: 300)) -> [UInt8] {
    var out = RawStreamEncoder.header()
    out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata))
    out += RawStreamEncoder.metadataSegment(metadata)
    out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data))
    out += RawStreamEncoder.dataSegment(offset: 0, plaintextLength: 61_440, payload: [UInt8](repeating: 1, count: 61_860), sparse: true)
    out += RawStreamEncoder.dataSegment(offset: 122_880, plaintextLength: 100, payload: [UInt8](repeating: 2, count: 128), sparse: true)
    out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named("user.comment")))
    out += RawStreamEncoder.dataSegment(offset: 0, plaintextLength: 5, payload: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33], sparse: false)
    out += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named("user.ünïcode")))
    return out
}

/// Decodes `stream` fed in chunks of `chunk` bytes (0 = all at once) and returns the records.
func decode(_ stream: [UInt8], chunk: Int) throws(RawStreamError) -> [RawRecord] {
    var d = RawStreamDecoder()
    var buf = RawInputBuffer()
    var out: [RawRecord] = []
    var i = 0
    repeat {
        let n = chunk == 0 ? stream.count : min(chunk, stream.count - i)
        buf.append(stream[i..<(i + n)])
        i += n
        while let r = try d.next(from: &buf) { out.append(r) }
    } while i < stream.count
    try d.finish(buf)
    return out
}

@Suite("Raw stream codec")
struct RawStreamTests {
    @Test("the layout matches MS-EFSR 2.2.3 byte for byte")
    func layout() {
        let s = sampleStream()
        #expect(Array(s[0..<20]) == [0, 1, 0, 0, 0x52, 0, 0x4F, 0, 0x42, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        // Metadata stream header: Length 0x1E, L"NTFS", Flag 0, reserved, NameLength 2, name 10 19.
        #expect(Array(s[20..<50]) == [0x1E, 0, 0, 0, 0x4E, 0, 0x54, 0, 0x46, 0, 0x53, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [2, 0, 0, 0, 0x10, 0x19])
        // GURE: Length = 16 + 300.
        #expect(Array(s[50..<66]) == [0x3C, 0x01, 0, 0, 0x47, 0, 0x55, 0, 0x52, 0, 0x45, 0, 0, 0, 0, 0])
        // ::$DATA header is 42 bytes.
        let data = 50 + 316
        #expect(Array(s[data..<(data + 4)]) == [0x2A, 0, 0, 0])
        let seg = data + 42
        // Encryption header: StartingFileOffset 0, Length 0x1F0, BytesWithinStreamSize 61440, EXTD at +0x30.
        #expect(Array(s[(seg + 0x18)..<(seg + 0x1C)]) == [0xF0, 0x01, 0, 0])
        #expect(Array(s[(seg + 0x30)..<(seg + 0x3C)]) == [0x45, 0x58, 0x54, 0x44, 0x10, 0, 0, 0, 1, 0, 0, 0])
        #expect(Array(s[(seg + 0x26)..<(seg + 0x2C)]) == [16, 16, 12, 1, 1, 0])
    }

    @Test("decodes the same records at every split point and byte by byte")
    func dripFeed() throws {
        let s = sampleStream()
        let whole = try decode(s, chunk: 0)
        #expect(whole.count == 9)
        #expect(whole[1] == .stream(RawStreamHeader(kind: .metadata)))
        #expect(whole[8] == .stream(RawStreamHeader(kind: .named("user.ünïcode"))))
        #expect(try decode(s, chunk: 1) == whole)
        for chunk in [2, 3, 7, 13, 511, 512, 513, 4096, 65_535, 65_536, 65_537] {
            #expect(try decode(s, chunk: chunk) == whole, "chunk \(chunk)")
        }
        // Every split into two pieces (sampled: the stream is ~62 KiB).
        for split in stride(from: 0, through: s.count, by: 97) {
            var d = RawStreamDecoder()
            var buf = RawInputBuffer()
            var out: [RawRecord] = []
            buf.append(s[0..<split])
            while let r = try d.next(from: &buf) { out.append(r) }
            buf.append(s[split...])
            while let r = try d.next(from: &buf) { out.append(r) }
            try d.finish(buf)
            #expect(out == whole, "split \(split)")
        }
    }

    @Test("truncation at every offset is rejected")
    func truncation() {
        let s = sampleStream()
        var boundaries = Set<Int>()
        // Cutting exactly at a structure boundary after the metadata is a valid shorter object; elsewhere it is not.
        var d = RawStreamDecoder()
        var buf = RawInputBuffer(s)
        while (try? d.next(from: &buf)) != nil { boundaries.insert(Int(d.offset)) }
        for cut in stride(from: 0, to: s.count, by: 1) where cut % 7 == 0 || cut < 600 {
            let ok = (try? decode(Array(s[0..<cut]), chunk: 0)) != nil
            let metadataDone = cut >= 50 + 316
            #expect(ok == (boundaries.contains(cut) && metadataDone), "cut at \(cut)")
        }
    }

    @Test("hostile streams are rejected with a clear code", arguments: [
        "signature", "second metadata", "data first", "segment first", "backwards", "overlap", "misaligned", "huge length",
        "overflow", "sizes mismatch", "garbage", "duplicate named", "two data", "metadata two segments", "tiny metadata",
    ])
    func hostile(_ kind: String) {
        let md = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata)) + RawStreamEncoder.metadataSegment([UInt8](repeating: 1, count: 200))
        let dataHeader = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data))
        func seg(_ off: UInt64, _ n: Int = 100) -> [UInt8] { RawStreamEncoder.dataSegment(offset: off, plaintextLength: UInt32(n), payload: [UInt8](repeating: 3, count: n + 28), sparse: false) }
        var s = RawStreamEncoder.header()
        switch kind {
        case "signature": s[5] = 0x51; s += md
        case "second metadata": s += md + md
        case "data first": s += dataHeader + md
        case "segment first": s += seg(0)
        case "backwards": s += md + dataHeader + seg(4096) + seg(0)
        case "overlap": s += md + dataHeader + seg(0, 1000) + seg(512)
        case "misaligned":
            var g = seg(0)
            g[0x10] = 100  // StartingFileOffset 100: not a multiple of 512
            s += md + dataHeader + g
        case "huge length":
            s += md + dataHeader
            var g = seg(0)
            g[0] = 0xFF; g[1] = 0xFF; g[2] = 0xFF; g[3] = 0x7F
            s += g
        case "overflow": s += md + dataHeader + RawStreamEncoder.dataSegment(offset: UInt64.max - 511, plaintextLength: 1000, payload: [1], sparse: false)
        case "sizes mismatch":
            s += md + dataHeader
            var g = seg(0)
            g[0x2C] = 0x10  // DataBlockSizes[0] no longer matches the payload
            s += g
        case "garbage": s += md + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
        case "duplicate named":
            s += md + RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named("a"))) + RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named("a")))
        case "two data": s += md + dataHeader + dataHeader
        case "metadata two segments": s += md + RawStreamEncoder.metadataSegment([UInt8](repeating: 1, count: 200))
        case "tiny metadata": s += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata)) + RawStreamEncoder.metadataSegment([1])
        default: Issue.record("unknown case")
        }
        #expect(throws: RawStreamError.self) { try decode(s, chunk: 0) }
        #expect(throws: RawStreamError.self) { try decode(s, chunk: 1) }
    }

    @Test("tolerated variants: 16-byte ::$DATA name, swapped metadata name, Flag 1 streams, nonzero reserved bytes")
    func tolerant() throws {
        var s = RawStreamEncoder.header()
        s[12] = 0xEE  // reserved: ignored
        var mh = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .metadata))
        mh[28] = 0x19; mh[29] = 0x10
        s += mh + RawStreamEncoder.metadataSegment([UInt8](repeating: 9, count: 100))
        var dh = RawStreamEncoder.streamHeader(RawStreamHeader(kind: .data))
        dh[0] = 44; dh[24] = 16
        dh += [0, 0]
        s += dh + RawStreamEncoder.dataSegment(offset: 0, plaintextLength: 4, payload: [UInt8](repeating: 0, count: 32), sparse: false)
        s += RawStreamEncoder.streamHeader(RawStreamHeader(kind: .named("plain"), flag: 1))
        s += RawStreamEncoder.metadataSegment([UInt8](repeating: 4, count: 90))  // a bare GURE for a Flag 1 stream
        let r = try decode(s, chunk: 0)
        #expect(r[3] == .stream(RawStreamHeader(kind: .data)))
        #expect(r[5] == .stream(RawStreamHeader(kind: .named("plain"), flag: 1)))
        #expect(r[6] == .segment(nil, payload: [UInt8](repeating: 4, count: 90)))
    }
}
