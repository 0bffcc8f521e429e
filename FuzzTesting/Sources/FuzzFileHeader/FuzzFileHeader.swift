// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import FuzzSupport

// Fuzzes the fixed parts of an encrypted backing file: `FileHeader(decoding:)`, `SizeRecord.decode` and
// `SizeRecord.current`, and `MetadataSlot.decode` (which calls `decodeHeader`).
//
// Input: a mode byte (`FixUp.Mode`; bits 4–6 pick a slot capacity), then the file's fixed parts packed as in a
// raw metadata payload: header at 0, size records at 64 and 128, one metadata slot from 192. (On disk the slot is
// at 4096; the packing keeps the fuzzer off the zero padding.) Parsers that accept their input must re-encode it
// byte for byte (fields the format leaves unchecked aside): a non-canonical encoding that is accepted is
// reported as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let modeByte = input.first else { return 0 }
    let mode = FixUp.Mode(rawValue: modeByte)
    var b = Array(input.dropFirst())
    if mode.contains(.macs), b.count >= 192 {
        FixUp.sizeRecordMAC(&b, at: 64, fileID: Array(b[16..<32]))
        FixUp.sizeRecordMAC(&b, at: 128, fileID: Array(b[16..<32]))
    }
    if mode.contains(.checksums) {
        FixUp.slotChecksum(&b, at: 192)
        FixUp.headerChecksum(&b)
    }

    // §2 file header.
    var capacity = Limits.maximumSlotCapacity
    if let header = try? FileHeader(decoding: b) {
        Fuzz.check(header.encoded() == Array(b.prefix(FileHeader.size)), "an accepted header does not re-encode")
        Fuzz.check(header.slotCapacity % FileHeader.slotAlignment == 0 && header.slotCapacity >= 4_096, "bad capacity")
        Fuzz.check(header.dataOffset > header.slotOffset(1), "slots overlap the data")
        capacity = header.slotCapacity
        Fuzz.note("header ok, capacity \(capacity)")
    }
    // A capacity chosen by the mode byte: the slot must respect any capacity, including tiny and odd ones.
    let capacities = [capacity, [0, 1, 31, 32, 33, 4_096, 8_192, Int.max][Int(modeByte >> 4) & 7]]

    // §3 size records, with the fixed key bound to the header's file id.
    if b.count >= 64 {
        let fek = FuzzKey.fek(forFileIDBytes: b[16..<32])
        let a = b.dropFirst(64).prefix(64)
        let c = b.dropFirst(128).prefix(64)
        for copy in [a, c] {
            if let record = try? SizeRecord.decode(copy, fek) {
                // Bytes 20..<32 are reserved and, per file-format.md §3, covered by the MAC but not checked, so
                // only the fields re-encode.
                Fuzz.check(Array(record.encoded(fek)[0..<20]) == Array(copy.prefix(20)), "an accepted size record does not re-encode")
                Fuzz.note("size record ok: \(String(describing: record))")
                Fuzz.check(record.generation > 0 && record.plaintextSize <= Limits.maximumPlaintextSize, "bad size record")
            }
        }
        if let current = try? SizeRecord.current(a, c, fek) {
            Fuzz.note("current size record: \(current.generation)")
            Fuzz.check(current.generation > 0, "current size record has generation 0")
        }
    }

    // §4.1 metadata slot.
    if b.count >= 192 {
        let slot = b[192...]
        for cap in capacities {
            if let (generation, body) = try? MetadataSlot.decode(slot, capacity: cap) ?? nil {
                Fuzz.check(generation > 0 && body.count <= min(Limits.maximumMetadataSize, cap - MetadataSlot.headerSize), "slot limits")
                Fuzz.note("slot ok (capacity \(cap)): generation \(generation), \(body.count) bytes")
                let encoded = MetadataSlot.encode(body: body, generation: generation)
                Fuzz.check(encoded == Array(slot.prefix(encoded.count)), "an accepted slot does not re-encode")
            }
        }
    }
    return 0
}

@_cdecl("FuzzFileHeader_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
