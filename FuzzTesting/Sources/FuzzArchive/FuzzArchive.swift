// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import FuzzSupport

// Fuzzes the pax (ustar) archive reader of `efs restore` (`ArchiveReader.append`, `next()`, `readContent` and
// `finish()`).
//
// Input: one split byte, then the archive. The archive is read twice: all at once, and fed in chunks whose sizes
// come from the split byte (low 4 bits: log2 of the largest chunk; 0 is one byte at a time), with content taken in
// pieces of random size. With bit 4 set, content is never taken, so `next()` must skip it. Both runs must give the
// same entries, content and error: a difference is reported as a crash.

struct Outcome: Equatable {
    var entries: [ArchiveEntry] = []
    var contents: [[UInt8]] = []
    var error: ArchiveError?
    var errorOffset: UInt64?
}

func read(_ archive: ArraySlice<UInt8>, skipContent: Bool, chunks next: () -> Int) -> Outcome {
    var out = Outcome()
    var reader = ArchiveReader()
    var i = archive.startIndex
    func feed() -> Bool {
        guard i < archive.endIndex else { return false }
        let n = min(max(1, next()), archive.endIndex - i)
        reader.append(archive[i..<(i + n)])
        i += n
        return true
    }
    do {
        while true {
            if !skipContent, !out.entries.isEmpty, reader.contentRemaining > 0 {
                let part = reader.readContent(maximum: max(1, next()))
                if part.isEmpty {
                    if !feed() { break }
                } else {
                    out.contents[out.contents.count - 1] += part
                    Fuzz.check(out.contents[out.contents.count - 1].count <= out.entries[out.entries.count - 1].size, "more content than the entry's size")
                }
                continue
            }
            if let entry = try reader.next() {
                Fuzz.check(!entry.path.isEmpty && entry.size <= ArchiveLimits.maximumEntrySize, "entry limits")
                Fuzz.check(reader.contentRemaining == entry.size, "content remaining is not the entry's size")
                out.entries.append(entry)
                out.contents.append([])
                Fuzz.check(out.entries.count <= archive.count / 512 + 1, "more entries than header blocks")
                continue
            }
            if reader.isAtEnd, i == archive.endIndex { break }
            if !feed() { break }
        }
        try reader.finish()
    } catch {
        out.error = error
        out.errorOffset = error.offset
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let split = input.first else { return 0 }
    let archive = input.dropFirst()
    let skip = split & 0x10 != 0
    let whole = read(archive, skipContent: skip) { Int.max }
    var rng = SplitMix64(seed: UInt64(split))
    let maximum = 1 << Int(split & 0x0F)
    let pieces = read(archive, skipContent: skip) { split & 0x0F == 0 ? 1 : Int.random(in: 1...maximum, using: &rng) }
    Fuzz.note("archive: \(whole.entries.map(\.path)), error: \(whole.error.map { "\($0)" } ?? "none")")
    Fuzz.check(
        whole == pieces,
        "split \(split) changed the outcome: \(whole.entries.count) entries / \(String(describing: whole.error)) vs \(pieces.entries.count) / \(String(describing: pieces.error))")
    return 0
}

@_cdecl("FuzzArchive_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
