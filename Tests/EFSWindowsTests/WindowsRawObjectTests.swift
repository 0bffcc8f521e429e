// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Testing

@testable import EFSWindows

@Suite("Windows raw streams (ROBS) and the ntfs-3g form")
struct WindowsRawObjectTests {
    let fek = try! WindowsFEK(algorithm: .aes256, key: pattern(32, seed: 2))

    func object(
        named: [(String, Int)] = [("secret", 700), ("Zone.Identifier", 26)], dataSize: Int? = 1000
    ) throws -> (WindowsRawObject, [String: [UInt8]]) {
        let c = try WindowsDataCipher(fek: fek)
        var streams: [WindowsRawObject.Stream] = []
        var plain: [String: [UInt8]] = [:]
        var all = named.map { (RawStreamKind.named($0.0), $0.1) }
        if let dataSize { all.insert((.data, dataSize), at: 0) }
        for (i, (kind, size)) in all.enumerated() {
            let p = pattern(size, seed: UInt8(i + 10))
            let s = WindowsRawObject.Stream(
                kind: kind, segments: try WindowsRawObject.segments(ciphertext: encryptAll(c, p), size: UInt64(size)))
            plain[s.name] = p
            streams.append(s)
        }
        return (try WindowsRawObject(metadataBytes: sampleMetadata(fek).encode(), streams: streams), plain)
    }

    @Test("named streams round trip and decrypt; a directory has only named streams")
    func namedStreams() throws {
        for dataSize in [1000, nil] as [Int?] {
            let (o, plain) = try object(dataSize: dataSize)
            let bytes = try o.encode()
            let parsed = try WindowsRawObject.parse(bytes)
            #expect(parsed.streams.map(\.name) == o.streams.map(\.name))
            #expect(parsed.metadata == o.metadata)
            let c = try WindowsDataCipher(fek: fek)
            for s in parsed.streams { #expect(try parsed.decrypt(s, cipher: c) == plain[s.name]) }
            #expect(try parsed.encode() == bytes)
        }
    }

    @Test("the layout of §3.5's worked example: a 621-byte file")
    func workedExample() throws {
        let c = try WindowsDataCipher(fek: fek)
        let ct = try encryptAll(c, pattern(621))
        let metadata = try sampleMetadata(fek).encode()
        let o = try WindowsRawObject(
            metadataBytes: metadata,
            streams: [.init(kind: .data, segments: WindowsRawObject.segments(ciphertext: ct, size: 621))])
        let b = try o.encode()
        let m = 0x14 + 30 + 16 + metadata.count  // ROBS header, metadata stream header, GURE header, $EFS
        #expect(Array(b[0..<4]) == [0, 1, 0, 0])
        #expect(le32(b, 0x14) == 0x1E && Array(b[0x30..<0x32]) == [0x10, 0x19])
        #expect(le32(b, m) == 0x2A)  // the ::$DATA stream header
        let g = m + 0x2A
        #expect(le32(b, g) == 0x600)  // GURE: 512 + 1024
        #expect(
            Array(b[(g + 0x10)..<(g + 0x30)]) == hex("0000000000000000F00100006D0200006D02000000000A0A0C01010000040000")
        )
        #expect(
            Array(b[(g + 0x30)..<(g + 0x40)]) == Array("EXTD".utf8) + [0x10, 0, 0, 0] + [UInt8](repeating: 0, count: 8))
        #expect(b.count == g + 0x600)
    }

    @Test("an empty data stream: no segment, or one empty segment")
    func emptyStream() throws {
        let (o, _) = try object(named: [], dataSize: 0)
        #expect(o.streams[0].segments.isEmpty)
        let parsed = try WindowsRawObject.parse(o.encode())
        #expect(parsed.streams[0].size == 0)
        #expect(try parsed.decrypt(parsed.streams[0], cipher: WindowsDataCipher(fek: fek)) == [])
        var one = o
        one.streams[0].segments = [
            .init(
                header: DataSegmentHeader(
                    startingFileOffset: 0, bytesWithinStreamSize: 0, bytesWithinVDL: 0, dataUnitShift: 9, chunkShift: 9,
                    clusterShift: 12, dataBlockSizes: [0], extendedFlags: 0), payload: [])
        ]
        let reparsed = try WindowsRawObject.parse(one.encode())
        #expect(try reparsed.decrypt(reparsed.streams[0], cipher: WindowsDataCipher(fek: fek)) == [])
        #expect(try reparsed.toNTFS3G().efsRaw == [0, 0])
    }

    @Test("raw-stream errors map onto format errors; metadata v2 inside a stream is refused")
    func errors() throws {
        let (o, _) = try object()
        let good = try o.encode()
        var b = good
        b[4] = 0x41
        #expect(throws: FormatError(.badMagic, "")) { try WindowsRawObject.parse(b) }
        #expect(throws: FormatError(.truncated, "")) { try WindowsRawObject.parse(Array(good.dropLast(100))) }
        #expect(throws: FormatError(.truncated, "")) { try WindowsRawObject.parse(good + [1, 2, 3, 4, 5]) }
        // EFS_Version 4 in the metadata payload (at 0x14 + 30 + 16 + 8).
        b = good
        put32(&b, 0x14 + 30 + 16 + 8, 4)
        let e = #expect(throws: FormatError.self) { try WindowsRawObject.parse(b) }
        #expect(e?.code == .unsupportedVersion && e?.message.contains("not supported yet") == true)
        // A block size that does not match BytesWithinStreamSize is refused without a key.
        let seg = 0x14 + 30 + 16 + o.metadataBytes.count + 0x2A
        b = good
        put32(&b, seg + 0x1C, 2000)
        #expect(throws: FormatError(.malformed, "")) { try WindowsRawObject.parse(b) }
        // A misaligned offset.
        b = good
        put32(&b, seg + 0x10, 100)
        #expect(throws: FormatError(.malformed, "")) { try WindowsRawObject.parse(b) }
    }

    @Test("every truncation and single-byte corruption of a stream is parsed or refused, never a crash")
    func corruption() throws {
        let (o, _) = try object(named: [("a", 10)], dataSize: 600)
        let good = try o.encode()
        // A prefix that ends between structures is a valid, shorter object (ROBS has no terminator); any other is refused.
        for n in stride(from: 0, to: good.count, by: 7) {
            if let parsed = try? WindowsRawObject.parse(Array(good.prefix(n))) {
                #expect(
                    parsed.streams.count < o.streams.count
                        || parsed.streams.last?.segments.count != o.streams.last?.segments.count)
            }
        }
        #expect(throws: FormatError.self) { try WindowsRawObject.parse(Array(good.dropLast(1))) }
        let c = try WindowsDataCipher(fek: fek)
        for i in stride(from: 0, to: good.count, by: 3) {
            var b = good
            b[i] ^= 0xA5
            if let parsed = try? WindowsRawObject.parse(b) {
                for s in parsed.streams { _ = try? parsed.decrypt(s, cipher: c, maximumSize: 1 << 20) }
            }
        }
    }

    @Test("drip feed: a raw stream fed to RawStreamDecoder and WindowsSegmentDecryptor at many split points")
    func dripFeed() throws {
        let (o, plain) = try object(named: [("a", 700)], dataSize: 1500)
        let bytes = try o.encode()
        let c = try WindowsDataCipher(fek: fek)
        func decode(_ chunks: [ArraySlice<UInt8>]) throws -> [String: [UInt8]] {
            var decoder = WindowsRawObject.makeDecoder()
            var buffer = RawInputBuffer()
            var out: [String: [UInt8]] = [:]
            var current = ""
            var segments = WindowsSegmentDecryptor(cipher: c)
            for chunk in chunks {
                buffer.append(chunk)
                while let record = try decoder.next(from: &buffer) {
                    switch record {
                    case .stream(let h) where h.kind != .metadata:
                        current = WindowsRawObject.Stream(kind: h.kind, segments: []).name
                        segments = WindowsSegmentDecryptor(cipher: c)
                        out[current] = []
                    case .segment(let h?, let payload):
                        for e in try segments.decrypt(h, payload: payload) {
                            #expect(e.offset == UInt64(out[current]!.count))
                            out[current]! += e.bytes
                        }
                    default: break
                    }
                }
            }
            try decoder.finish(buffer)
            return out
        }
        #expect(try decode([bytes[...]]) == plain)
        for split in stride(from: 0, through: bytes.count, by: 37) {
            #expect(try decode([bytes[..<split], bytes[split...]]) == plain, "split at \(split)")
        }
        #expect(try decode(stride(from: 0, to: bytes.count, by: 1).map { bytes[$0..<($0 + 1)] }) == plain)
    }

    @Test("encrypting(metadata:fek:streams:) makes an object that decrypts with each user's key")
    func encrypting() throws {
        let fek = try WindowsFEK.generate(.desx)
        let streams: [(kind: RawStreamKind, plaintext: [UInt8])] = [
            (.data, pattern(70_000)), (.named("ads"), pattern(5)),
        ]
        let o = try WindowsRawObject.encrypting(metadata: sampleMetadata(fek), fek: fek, streams: streams)
        let parsed = try WindowsRawObject.parse(o.encode())
        let (opened, _) = try parsed.metadata.unwrapFEK(using: TestIdentity.agent.key.key, thumbprint: nil)
        let c = try WindowsDataCipher(fek: opened)
        #expect(try parsed.decrypt(parsed.streams[0], cipher: c) == pattern(70_000))
        #expect(try parsed.decrypt(parsed.streams[1], cipher: c) == pattern(5))
        #expect(throws: FormatError(.malformed, "")) {
            try WindowsRawObject.encrypting(metadata: sampleMetadata(fek), fek: fek, streams: [(.metadata, [])])
        }
    }

    @Test("the ntfs-3g form: efs_raw + $EFS")
    func ntfs3g() throws {
        let c = try WindowsDataCipher(fek: fek)
        let plain = pattern(70_000, seed: 3)
        let raw = try NTFS3GEfsRaw.encode(ciphertext: encryptAll(c, plain), size: 70_000)
        let metadata = try sampleMetadata(fek).encode()
        let o = try WindowsRawObject.fromNTFS3G(efsRaw: raw, efsInfo: metadata)
        #expect(o.streams.count == 1 && o.streams[0].segments.count == 2)
        #expect(try o.decrypt(o.streams[0], cipher: c) == plain)
        #expect(throws: FormatError.self) {
            try WindowsRawObject.fromNTFS3G(efsRaw: raw, efsInfo: Array(metadata.prefix(0x54)))
        }
        // VDL below the size cannot be expressed in efs_raw.
        var vdl = o
        vdl.streams[0].segments[1].header?.bytesWithinVDL = 1
        #expect(throws: FormatError(.malformed, "")) { try vdl.toNTFS3G() }
    }
}
