// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

@testable import EFSCore
import Testing

@Suite("WriteJournal (redo record)")
struct WriteJournalTests {
    let fileID = FileID.random()

    /// The record as a writer lays it out past a data region of `dataEnd` bytes starting at file offset `dataOffset`.
    func region(_ r: WriteJournal, dataOffset: UInt64, prefix: [UInt8]) -> [UInt8] {
        var out = prefix
        out += r.payload ?? []
        out += [UInt8](repeating: 0, count: r.padding(dataOffset: dataOffset))
        out += r.footer(fileID: fileID)
        return out
    }

    func parse(_ region: [UInt8], dataOffset: UInt64) -> WriteJournal? {
        let footer = Array(region.suffix(WriteJournal.footerSize))
        guard let r = WriteJournal.footer(footer, regionLength: UInt64(region.count), dataOffset: dataOffset) else { return nil }
        let payload = Array(region[Int(r.dataEnd)..<(Int(r.dataEnd) + r.length)])
        return r.withPayload(payload, footer: footer, fileID: fileID)
    }

    @Test("round trip; the footer never crosses a 4 KiB boundary", arguments: [0, 1, 4124, 8248, 4096 * 3 - 40, 100_000])
    func roundTrip(dataEnd: Int) {
        for dataOffset in [UInt64(20_480), 20_481, 24_000] {
            for length in [1, 4124, 3 * 4124, 4096 - 47] where length <= dataEnd + length {
                let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                let target = UInt64(max(0, dataEnd - length / 2))
                let end = max(UInt64(dataEnd), target + UInt64(length))
                let r = WriteJournal(target: target, dataEnd: end, payload: payload)
                let footerAt = dataOffset + r.footerOffset(dataOffset: dataOffset)
                #expect(footerAt / 4096 == (footerAt + 47) / 4096, "the footer stays inside one page")
                let bytes = region(r, dataOffset: dataOffset, prefix: [UInt8](repeating: 1, count: Int(end)))
                #expect(parse(bytes, dataOffset: dataOffset) == r)
            }
        }
    }

    @Test("a torn payload keeps the footer's extent but no payload; another file's record is not redone")
    func tornAndForeign() {
        let r = WriteJournal(target: 0, dataEnd: 8248, payload: [UInt8](repeating: 9, count: 8248))
        var bytes = region(r, dataOffset: 20_480, prefix: [UInt8](repeating: 1, count: 8248))
        bytes[8248 + 5000] ^= 1
        let torn = parse(bytes, dataOffset: 20_480)
        #expect(torn?.dataEnd == 8248)
        #expect(torn?.payload == nil)
        let other = WriteJournal(target: 0, dataEnd: 8248, payload: [UInt8](repeating: 9, count: 8248))
        let foreign = region(other, dataOffset: 20_480, prefix: [UInt8](repeating: 1, count: 8248))
        let footer = Array(foreign.suffix(48))
        let parsed = WriteJournal.footer(footer, regionLength: UInt64(foreign.count), dataOffset: 20_480)
        #expect(parsed?.withPayload(Array(foreign[8248..<16_496]), footer: footer, fileID: .random()).payload == nil)
    }

    @Test("footers that do not describe a record ending the region are not records")
    func invalid() {
        let r = WriteJournal(target: 100, dataEnd: 5000, payload: [1, 2, 3])
        let good = region(r, dataOffset: 0, prefix: [UInt8](repeating: 0, count: 5000))
        #expect(parse(good, dataOffset: 0) != nil)
        #expect(parse(good + [0], dataOffset: 0) == nil, "bytes after the footer")
        #expect(parse(Array(good.dropFirst()), dataOffset: 0) == nil, "a region of another length")
        let padded = WriteJournal(target: 0, dataEnd: 4077, payload: [1, 2, 3])  // footer would start at 4080: padded
        #expect(padded.padding(dataOffset: 0) == 16)
        let paddedRegion = region(padded, dataOffset: 0, prefix: [UInt8](repeating: 0, count: 4077))
        #expect(parse(paddedRegion, dataOffset: 0) == padded)
        #expect(parse(paddedRegion, dataOffset: 40) == nil, "padding for another data offset")
        var badMagic = good
        badMagic[good.count - 48] ^= 1
        #expect(parse(badMagic, dataOffset: 0) == nil)
        for (field, value) in [(8, UInt64(4998)), (16, UInt64(0)), (16, UInt64(WriteJournal.maximumPayload + 1)), (24, UInt64(1 << 40))] {
            var f = good
            for k in 0..<8 { f[good.count - 48 + field + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
            #expect(parse(f, dataOffset: 0) == nil, "field at \(field) = \(value)")
        }
    }

    /// A footer whose fields sit near 2^64 (no real file has such offsets) is refused, not an overflow trap:
    /// `target + length` and `dataOffset + footerOffset` are computed only for offsets up to `Int64.max`.
    @Test("offsets near 2^64 are refused without overflow")
    func hugeOffsets() {
        var head = ByteWriter()
        head.write(bytes: WriteJournal.magic)
        head.write(UInt64.max - 1)  // target
        head.write(UInt64(WriteJournal.maximumPayload))  // length
        head.write(UInt64.max)  // regionBefore
        let footer = head.bytes + [UInt8](repeating: 0, count: 16)
        #expect(WriteJournal.footer(footer, regionLength: .max, dataOffset: 0) == nil)
        #expect(WriteJournal.footer(footer, regionLength: UInt64(Int64.max) + 1, dataOffset: 0) == nil)
        let r = WriteJournal(target: 0, dataEnd: 100, payload: [1])
        let ok = r.footer(fileID: fileID)
        let regionLength = r.footerOffset(dataOffset: 0) + 48
        #expect(WriteJournal.footer(ok, regionLength: regionLength, dataOffset: 0) != nil)
        #expect(WriteJournal.footer(ok, regionLength: regionLength, dataOffset: .max - 10) == nil)
    }
}
