// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import FuzzSupport

// Fuzzes the redo record's parser (`Documentation/file-format.md` §5.4): `WriteJournal.footer(_:regionLength:
// dataOffset:)` and `withPayload(_:footer:fileID:)`, which `EncryptedFileInfo` runs on the last bytes of every
// backing file it opens, before any key is used.
//
// Input: a mode byte, a 16-byte file id, u64 LE data offset, u64 LE region length, then the tail of the data
// region (its last bytes, the footer last). Mode bit 0 rewrites the region length so that the footer's fields put
// the footer exactly at the end (else the fuzzer rarely passes the geometry checks); bit 1 rewrites the checksum
// over the payload found in the tail. Whatever the parser accepts must satisfy the layout's invariants and
// re-encode byte for byte.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard input.count >= 33 + WriteJournal.footerSize else { return 0 }
    let mode = input[0]
    guard let fileID = try? FileID(bytes: input[1..<17]) else { return 0 }
    func le64(_ at: Int, _ b: [UInt8]) -> UInt64 { UInt64.littleEndian(b[at..<(at + 8)]) }
    let dataOffset = le64(17, input)
    var regionLength = le64(25, input)
    var tail = Array(input[33...])
    let footerStart = tail.count - WriteJournal.footerSize

    // The footer's own fields, read the way the format lays them out (for the fix-ups only).
    let target = le64(footerStart + 8, tail), length = le64(footerStart + 16, tail), before = le64(footerStart + 24, tail)
    let sane = length > 0 && length <= UInt64(WriteJournal.maximumPayload) && target < before
        && before <= WriteJournal.maximumOffset / 2 && dataOffset <= WriteJournal.maximumOffset / 2
    if mode & 1 != 0, sane {
        let r = WriteJournal(target: target, regionBefore: before, payload: [UInt8](repeating: 0, count: Int(length)))
        regionLength = r.footerOffset(dataOffset: dataOffset) + UInt64(WriteJournal.footerSize)
    }
    // Where the tail starts in the data region (it may be shorter than the region, never longer).
    guard regionLength >= UInt64(tail.count) else { return 0 }
    let tailStart = regionLength - UInt64(tail.count)
    func payloadRange(dataEnd: UInt64, length: Int) -> Range<Int>? {
        guard dataEnd >= tailStart, dataEnd - tailStart <= UInt64(footerStart) else { return nil }
        let from = Int(dataEnd - tailStart)
        return from + length <= footerStart ? from..<(from + length) : nil
    }
    if mode & 2 != 0, sane, let range = payloadRange(dataEnd: max(before, target + length), length: Int(length)) {
        let r = WriteJournal(target: target, regionBefore: before, payload: Array(tail[range]))
        tail.replaceSubrange(footerStart..., with: r.footer(fileID: fileID))
    }

    let footer = Array(tail[footerStart...])
    guard let record = WriteJournal.footer(footer, regionLength: regionLength, dataOffset: dataOffset) else { return 0 }
    Fuzz.note("footer ok: target \(record.target), length \(record.length), before \(record.regionBefore)")
    Fuzz.check(record.payload == nil, "a parsed footer carries a payload before it is read")
    Fuzz.check(record.length > 0 && record.length <= WriteJournal.maximumPayload, "payload length out of bounds")
    Fuzz.check(record.target < record.regionBefore && record.regionBefore <= record.dataEnd, "record fields out of order")
    Fuzz.check(record.dataEnd + UInt64(record.length) + UInt64(WriteJournal.footerSize) <= regionLength, "record overruns region")
    Fuzz.check(record.footerOffset(dataOffset: dataOffset) + UInt64(WriteJournal.footerSize) == regionLength, "footer not at end")
    let pageOffset = (dataOffset + record.footerOffset(dataOffset: dataOffset)) % 4096
    Fuzz.check(pageOffset + UInt64(WriteJournal.footerSize) <= 4096, "an accepted footer crosses a 4 KiB boundary")
    Fuzz.check(record.padding(dataOffset: dataOffset) < 4096, "padding of a page or more")
    Fuzz.check(record.regionAfterCompletion <= regionLength, "completion grows the region")

    // The payload, if the tail holds it: an intact one must be accepted and re-encode the footer exactly; any
    // other bytes (or a short payload) leave a torn record, which keeps the old region length.
    if let range = payloadRange(dataEnd: record.dataEnd, length: record.length) {
        let payload = Array(tail[range])
        let completed = record.withPayload(payload, footer: footer, fileID: fileID)
        if completed.payload != nil {
            Fuzz.check(completed.payload == payload, "the accepted payload is not the one read")
            Fuzz.check(completed.footer(fileID: fileID) == footer, "an accepted record does not re-encode")
            Fuzz.check(completed.regionAfterCompletion == completed.dataEnd, "an intact record does not redo")
            Fuzz.note("payload intact")
        } else {
            Fuzz.check(completed.regionAfterCompletion == completed.regionBefore, "a torn record does not roll back")
        }
        let short = record.withPayload(Array(payload.dropLast()), footer: footer, fileID: fileID)
        Fuzz.check(short.payload == nil, "a short payload is accepted")
    }
    return 0
}

@_cdecl("FuzzWriteJournal_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
