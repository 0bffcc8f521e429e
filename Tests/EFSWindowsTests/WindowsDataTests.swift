// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Testing

@testable import EFSWindows

private func cipher(_ alg: WindowsAlgorithm) throws -> WindowsDataCipher {
    try WindowsDataCipher(
        fek: WindowsFEK(algorithm: alg, key: pattern(alg.keyLength!, seed: UInt8(alg.rawValue & 0xFF))))
}

@Suite("Windows EFS data units")
struct WindowsDataTests {
    static let sizes = [0, 1, 511, 512, 513, 4096, 65535, 65536, 65537]

    @Test("IVs follow §4.5, wrapping modulo 2^64")
    func ivs() {
        // LE64(0x5816657BE9161312 + off) ‖ LE64(0x1989ADBE44918961 + off); LE64(0x169119629891AD13 + off).
        #expect(WindowsDataCipher.iv(.aes256, offset: 0) == hex("121316E97B651658" + "61899144BEAD8919"))
        #expect(WindowsDataCipher.iv(.aes256, offset: 512) == hex("121516E97B651658" + "618B9144BEAD8919"))
        #expect(WindowsDataCipher.iv(.tripleDES, offset: 0) == hex("13AD919862199116"))
        #expect(WindowsDataCipher.iv(.desx, offset: 512) == hex("13AF919862199116"))
        let wrap = UInt64.max - 0x5816_657B_E916_1312 + 1
        #expect(Array(WindowsDataCipher.iv(.aes256, offset: wrap).prefix(8)) == [UInt8](repeating: 0, count: 8))
    }

    @Test("each unit is plain CBC under its own IV", arguments: WindowsAlgorithm.supported)
    func unitIsCBC(alg: WindowsAlgorithm) throws {
        let key = pattern(alg.keyLength!, seed: 9)
        let c = try WindowsDataCipher(fek: WindowsFEK(algorithm: alg, key: key))
        let plain = pattern(1024, seed: 3)
        let ct = try c.encrypt(plain, offset: 4096)
        let unit1 = Array(plain[512...]), iv = WindowsDataCipher.iv(alg, offset: 4608)
        let expected: [UInt8]
        switch alg {
        case .aes256: expected = try LegacyCrypto.aesCBCEncrypt(key: key, iv: iv, unit1)
        case .tripleDES: expected = try TripleDES(key: key).cbcEncrypt(unit1, iv: iv)
        default: expected = try DESX(key: key).cbcEncrypt(unit1, iv: iv)
        }
        #expect(Array(ct[512...]) == expected)
        // Units are independent: the second unit alone decrypts at its offset.
        #expect(try c.decrypt(ct[512...], offset: 4608) == unit1)
        #expect(try c.decrypt(ct[512...], offset: 4096) != unit1)
    }

    @Test("round trips over the interesting sizes", arguments: WindowsAlgorithm.supported, sizes)
    func roundTrip(alg: WindowsAlgorithm, size: Int) throws {
        let c = try cipher(alg)
        let plain = pattern(size, seed: 1)
        let ct = try encryptAll(c, plain)
        #expect(ct.count == (size + 511) / 512 * 512)
        // Decrypt with the contiguous decryptor.
        var d = try WindowsDataDecryptor(cipher: c, size: UInt64(size))
        #expect(try d.decrypt(ct) == plain)
        try d.finish()
        // The zero padding of the last unit decrypts to zeros.
        #expect(try c.decrypt(ct, offset: 0).dropFirst(size).allSatisfy { $0 == 0 })
        // efs_raw.
        let raw = try NTFS3GEfsRaw.encode(ciphertext: ct, size: UInt64(size))
        #expect(raw.count == ct.count + 2)
        #expect(try NTFS3GEfsRaw.parse(raw).size == UInt64(size))
        var r = EfsRawDecryptor(cipher: c)
        var viaRaw = try r.decrypt(raw)
        viaRaw += try r.finish()
        #expect(viaRaw == plain)
        // ROBS: 64 KiB segments, build → parse → decrypt.
        let metadata = try sampleMetadata(WindowsFEK(algorithm: alg, key: pattern(alg.keyLength!)), drf: false).encode()
        let stream = WindowsRawObject.Stream(
            kind: .data, segments: try WindowsRawObject.segments(ciphertext: ct, size: UInt64(size)))
        let object = try WindowsRawObject(metadataBytes: metadata, streams: [stream])
        let parsed = try WindowsRawObject.parse(object.encode())
        #expect(parsed.streams == object.streams)
        #expect(parsed.streams[0].size == UInt64(size))
        #expect(parsed.streams[0].segments.count == (size + 65535) / 65536)
        #expect(try parsed.decrypt(parsed.streams[0], cipher: c) == plain)
        // And back to the ntfs-3g form.
        let (efsRaw, efsInfo) = try parsed.toNTFS3G()
        #expect(efsRaw == raw && efsInfo == metadata)
        #expect(try WindowsRawObject.fromNTFS3G(efsRaw: raw, efsInfo: metadata).streams == parsed.streams)
    }

    @Test(
        "drip feed: every split point, byte by byte, and odd chunks give the same plaintext",
        arguments: WindowsAlgorithm.supported)
    func dripFeed(alg: WindowsAlgorithm) throws {
        let c = try cipher(alg)
        let plain = pattern(1300, seed: 4)
        let ct = try encryptAll(c, plain)
        for split in 0...ct.count {
            var d = try WindowsDataDecryptor(cipher: c, size: 1300)
            let out = try d.decrypt(ct[..<split]) + d.decrypt(ct[split...])
            try d.finish()
            #expect(out == plain, "split at \(split)")
        }
        for chunk in [1, 7, 511, 513] {
            var d = try WindowsDataDecryptor(cipher: c, size: 1300)
            var out: [UInt8] = []
            var i = 0
            while i < ct.count {
                out += try d.decrypt(ct[i..<min(i + chunk, ct.count)])
                i += chunk
            }
            try d.finish()
            #expect(out == plain, "chunks of \(chunk)")
        }
        // efs_raw at every split point.
        let raw = try NTFS3GEfsRaw.encode(ciphertext: ct, size: 1300)
        for split in 0...raw.count {
            var r = EfsRawDecryptor(cipher: c)
            var out = try r.decrypt(raw[..<split])
            out += try r.decrypt(raw[split...])
            out += try r.finish()
            #expect(out == plain, "efs_raw split at \(split)")
        }
        // The encryptor at every split point.
        for split in stride(from: 0, through: plain.count, by: 13) {
            var e = WindowsDataEncryptor(cipher: c)
            let out = try e.encrypt(plain[..<split]) + e.encrypt(plain[split...]) + e.finish()
            #expect(out == ct, "encryptor split at \(split)")
        }
    }

    @Test("the decryptor refuses too much or too little ciphertext and bad parameters")
    func decryptorErrors() throws {
        let c = try cipher(.aes256)
        let ct = try encryptAll(c, pattern(600))
        var d = try WindowsDataDecryptor(cipher: c, size: 600)
        #expect(throws: FormatError(.trailingData, "")) { try d.decrypt(ct + [0]) }
        var short = try WindowsDataDecryptor(cipher: c, size: 600)
        _ = try short.decrypt(ct.prefix(700))
        #expect(throws: FormatError(.truncated, "")) { try short.finish() }
        #expect(throws: FormatError(.malformed, "")) { try WindowsDataDecryptor(cipher: c, startOffset: 100, size: 1) }
        #expect(throws: FormatError(.malformed, "")) {
            try WindowsDataDecryptor(cipher: c, size: 10, validDataLength: 11)
        }
        #expect(throws: FormatError(.limitExceeded, "")) { try WindowsDataDecryptor(cipher: c, size: UInt64.max) }
        #expect(throws: FormatError(.malformed, "")) { try c.decrypt([1, 2, 3], offset: 0) }
    }

    @Test("bytes beyond the valid data length come out as zeros")
    func validDataLength() throws {
        let c = try cipher(.tripleDES)
        let plain = pattern(1500, seed: 5)
        let ct = try encryptAll(c, plain)
        for vdl in [0, 1, 511, 512, 700, 1499, 1500] {
            var d = try WindowsDataDecryptor(cipher: c, size: 1500, validDataLength: UInt64(vdl))
            let out = try d.decrypt(ct)
            #expect(Array(out.prefix(vdl)) == Array(plain.prefix(vdl)))
            #expect(out.dropFirst(vdl).allSatisfy { $0 == 0 } && out.count == 1500)
        }
    }

    @Test("segments: VDL, holes between segments, and several data blocks with a hole")
    func segments() throws {
        let c = try cipher(.aes256)
        // One segment with VDL < size.
        let plain = pattern(5000, seed: 6)
        let ct = try encryptAll(c, plain)
        let vdlHeader = DataSegmentHeader(
            startingFileOffset: 0, bytesWithinStreamSize: 5000, bytesWithinVDL: 1234, dataUnitShift: 13, chunkShift: 13,
            clusterShift: 12, dataBlockSizes: [5120], extendedFlags: 0)
        var d = WindowsSegmentDecryptor(cipher: c)
        let extents = try d.decrypt(vdlHeader, payload: ct)
        #expect(extents.count == 1 && extents[0].bytes.prefix(1234) == plain.prefix(1234))
        #expect(extents[0].bytes.dropFirst(1234).allSatisfy { $0 == 0 })
        // A segment at 64 KiB after the first: the gap is a hole.
        let tail = pattern(100, seed: 7)
        let tailCT = try c.encrypt(tail + [UInt8](repeating: 0, count: 412), offset: 65536)
        let second = DataSegmentHeader(
            startingFileOffset: 65536, bytesWithinStreamSize: 100, bytesWithinVDL: 100, dataUnitShift: 9, chunkShift: 9,
            clusterShift: 12, dataBlockSizes: [512], extendedFlags: 1)
        #expect(try d.decrypt(second, payload: tailCT) == [WindowsPlaintextExtent(offset: 65536, bytes: tail)])
        #expect(d.streamSize == 65636)
        // Going backwards is refused.
        #expect(throws: FormatError(.malformed, "")) { try d.decrypt(vdlHeader, payload: ct) }
        // Three 4 KiB data units, the middle one a hole.
        let base: UInt64 = 8192
        let p0 = pattern(4096, seed: 8), p2 = pattern(1808, seed: 9)
        let c0 = try c.encrypt(p0, offset: base)
        let c2 = try c.encrypt(p2 + [UInt8](repeating: 0, count: 240), offset: base + 8192)
        let sparse = DataSegmentHeader(
            startingFileOffset: base, bytesWithinStreamSize: 10000, bytesWithinVDL: 10000, dataUnitShift: 12,
            chunkShift: 12,
            clusterShift: 12, dataBlockSizes: [4096, 0, 2048], extendedFlags: 1)
        var s = WindowsSegmentDecryptor(cipher: c)
        #expect(
            try s.decrypt(sparse, payload: c0 + c2) == [
                WindowsPlaintextExtent(offset: base, bytes: p0), WindowsPlaintextExtent(offset: base + 8192, bytes: p2),
            ])
        // Block layouts that do not describe the data.
        var bad = sparse
        bad.dataBlockSizes = [4096, 0]
        #expect(throws: FormatError(.malformed, "")) { try WindowsSegmentDecryptor.blocks(of: bad) }
        bad.dataBlockSizes = [4096, 0, 1536]
        #expect(throws: FormatError(.malformed, "")) { try WindowsSegmentDecryptor.blocks(of: bad) }
        bad = sparse
        bad.dataUnitShift = 8
        #expect(throws: FormatError(.malformed, "")) { try WindowsSegmentDecryptor.blocks(of: bad) }
        bad = vdlHeader
        bad.bytesWithinStreamSize = 6000
        #expect(throws: FormatError(.malformed, "")) { try WindowsSegmentDecryptor.blocks(of: bad) }
        bad = vdlHeader
        bad.bytesWithinVDL = 5001
        #expect(throws: FormatError(.malformed, "")) { try WindowsSegmentDecryptor.blocks(of: bad) }
        var fresh = WindowsSegmentDecryptor(cipher: c)
        #expect(throws: FormatError(.malformed, "")) { try fresh.decrypt(vdlHeader, payload: ct.dropLast(512)) }
    }

    @Test("efs_raw: malformed trailers")
    func efsRawErrors() throws {
        #expect(throws: FormatError(.truncated, "")) { try NTFS3GEfsRaw.parse([]) }
        #expect(throws: FormatError(.truncated, "")) { try NTFS3GEfsRaw.parse([0]) }
        #expect(try NTFS3GEfsRaw.parse([0, 0]).size == 0)
        #expect(throws: FormatError(.malformed, "")) { try NTFS3GEfsRaw.parse([1, 0]) }
        #expect(throws: FormatError(.malformed, "")) { try NTFS3GEfsRaw.parse([UInt8](repeating: 0, count: 515)) }
        #expect(throws: FormatError(.malformed, "")) {
            try NTFS3GEfsRaw.parse([UInt8](repeating: 0, count: 512) + [0x00, 0x02])
        }
        #expect(try NTFS3GEfsRaw.parse([UInt8](repeating: 0, count: 512) + [0xFF, 0x01]).size == 1)
        #expect(throws: FormatError(.malformed, "")) {
            try NTFS3GEfsRaw.encode(ciphertext: [UInt8](repeating: 0, count: 512), size: 513)
        }
        var r = EfsRawDecryptor(cipher: try cipher(.desx))
        _ = try r.decrypt([UInt8](repeating: 0, count: 1027))
        #expect(throws: FormatError(.malformed, "")) { try r.finish() }
    }
}
