// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSRawStream
import FuzzSupport

// Fuzzes the MS-EFSR raw stream decoder (`RawStreamDecoder.next(from:)` and `finish(_:)`), the parser behind
// `efs raw import` and `efs raw inspect`.
//
// Input: one split byte, then the stream. The stream is decoded twice: all at once, and fed in chunks whose sizes
// come from the split byte (0: one byte at a time; otherwise random sizes up to 2^(low 4 bits) bytes, seeded by the
// byte), so split points are fuzzed too. Both runs must give the same records and the same error (STYLE.md 17, 23):
// a difference is reported as a crash.

struct Outcome: Equatable {
    var records: [RawRecord] = []
    var error: RawStreamError?
    var errorOffset: UInt64?
}

func decode(_ stream: ArraySlice<UInt8>, chunks next: (Int) -> Int) -> Outcome {
    var out = Outcome()
    var decoder = RawStreamDecoder()
    var buffer = RawInputBuffer()
    var i = stream.startIndex
    do {
        repeat {
            let n = min(max(1, next(stream.endIndex - i)), stream.endIndex - i)
            buffer.append(stream[i..<(i + n)])
            i += n
            while let record = try decoder.next(from: &buffer) {
                switch record {
                case .metadata(let payload):
                    Fuzz.check(payload.count >= RawStream.minimumMetadataPayload && payload.count <= RawStream.maximumMetadataPayload, "metadata size")
                case .segment(let header?, let payload):
                    Fuzz.check(UInt64(payload.count) == header.payloadLength, "segment payload is not the sum of its block sizes")
                    Fuzz.check(header.startingFileOffset % 512 == 0 && header.bytesWithinVDL <= header.bytesWithinStreamSize, "segment header")
                case .segment(nil, let payload):
                    Fuzz.check(payload.count <= RawStream.maximumSegmentLength, "segment size")
                case .header, .stream:
                    break
                }
                out.records.append(record)
                Fuzz.check(out.records.count <= stream.count + 1, "more records than input bytes")
            }
        } while i < stream.endIndex
        try decoder.finish(buffer)
        // After finish, the decoder is done: it must not produce anything more.
        Fuzz.check(try decoder.next(from: &buffer) == nil, "a record after finish")
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
    let stream = input.dropFirst()
    let whole = decode(stream) { $0 }
    var rng = SplitMix64(seed: UInt64(split))
    let maximum = 1 << Int(split & 0x0F)
    let pieces = decode(stream) { remaining in split == 0 ? 1 : Int.random(in: 1...maximum, using: &rng) }
    Fuzz.note("raw stream: \(whole.records.count) records, error: \(whole.error.map { "\($0)" } ?? "none")")
    Fuzz.check(
        whole == pieces,
        "split \(split) changed the outcome: \(whole.records.count) records / \(String(describing: whole.error)) vs \(pieces.records.count) / \(String(describing: pieces.error))")
    return 0
}

@_cdecl("FuzzRawStream_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
