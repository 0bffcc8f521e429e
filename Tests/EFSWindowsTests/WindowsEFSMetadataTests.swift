// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Testing

@testable import EFSWindows

@Suite("$EFS metadata v1 codec")
struct WindowsEFSMetadataTests {
    let fek = try! WindowsFEK(algorithm: .aes256, key: pattern(32))

    @Test("build → parse round trip, with SIDs, names, absent names and no DRF")
    func roundTrip() throws {
        for drf in [true, false] {
            let m = try sampleMetadata(fek, drf: drf)
            let bytes = try m.encode()
            let parsed = try WindowsEFSMetadata.parse(bytes)
            #expect(parsed == m)
            #expect(try parsed.encode() == bytes)
            #expect(parsed.drf == (drf ? m.drf : nil))
            #expect(parsed.ddf[0].publicKeyInfo.sid?.description == "S-1-5-21-1-2-3-1001")
            #expect(
                parsed.ddf[0].publicKeyInfo.certificate.providerName == "Microsoft Enhanced Cryptographic Provider v1.0"
            )
            #expect(parsed.ddf[1].publicKeyInfo.certificate.containerName == nil)
            #expect(parsed.ddf[1].publicKeyInfo.thumbprint == TestIdentity.bob.certificate.thumbprint.bytes)
        }
    }

    @Test("the header is laid out as §4.2 says")
    func headerLayout() throws {
        let m = try sampleMetadata(fek)
        let b = try m.encode()
        #expect(Int(le32(b, 0x00)) == b.count)  // Length
        #expect(le32(b, 0x08) == 2)  // EFS_Version
        #expect(Array(b[0x10..<0x20]) == Array(0..<16))  // EFS_ID
        #expect(b[0x20..<0x40].allSatisfy { $0 == 0 })  // EFS_Hash, Reserved3
        #expect(b[0x48..<0x54].allSatisfy { $0 == 0 })  // Reserved4
        #expect(le32(b, 0x40) == 0x54)  // DDF_Offset
        #expect(le32(b, 0x54) == 2)  // DDF count
        let drf = Int(le32(b, 0x44))
        #expect(le32(b, drf) == 1)  // DRF count
        // The first entry: PKI at +20 with type 3, the FEK at the stated offset and length.
        let e = 0x58
        #expect(le32(b, e + 4) == 20)
        let pki = e + 20
        #expect(le32(b, pki + 8) == 3)
        let fekOffset = e + Int(le32(b, e + 12)), fekLength = Int(le32(b, e + 8))
        #expect(Array(b[fekOffset..<(fekOffset + fekLength)]) == m.ddf[0].encryptedFEK)
        // SID at the Owner Hint offset: S-1-5-21-1-2-3-1001.
        let sid = pki + Int(le32(b, pki + 4))
        #expect(Array(b[sid..<(sid + 8)]) == [1, 5, 0, 0, 0, 0, 0, 5])
        // The thumbprint in the Certificate Data.
        let cd = pki + Int(le32(b, pki + 16))
        let tp = cd + Int(le32(b, cd))
        #expect(Array(b[tp..<(tp + 20)]) == TestIdentity.alice.certificate.thumbprint.bytes)
        // Display name: NUL-terminated UTF-16LE.
        let dn = cd + Int(le32(b, cd + 16))
        let expected = RawUTF16.bytes("alice(x@HOST)") + [0, 0]
        #expect(Array(b[dn..<(dn + expected.count)]) == expected)
    }

    @Test(
        "metadata versions 2 and 3 and unknown versions are refused, never misparsed",
        arguments: [0, 4, 5, 6, 7, 0xFFFF_FFFF] as [UInt32])
    func versions(version: UInt32) throws {
        var b = try sampleMetadata(fek).encode()
        put32(&b, 8, version)
        let error = #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(b) }
        #expect(error?.code == .unsupportedVersion)
        switch version {
        case 4, 5:
            #expect(
                error?.message.contains("metadata version 2") == true
                    && error?.message.contains("not supported yet") == true)
        case 6: #expect(error?.message.contains("metadata version 3") == true)
        default: #expect(error?.message.contains("unknown") == true)
        }
    }

    @Test(".pfile preamble is metadata version 3")
    func pfile() {
        let b = Array(".pfile".utf8) + [UInt8](repeating: 0, count: 200)
        let error = #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(b) }
        #expect(error?.code == .unsupportedVersion)
        #expect(WindowsMetadataFormat.classify(b) == .version3)
    }

    @Test("EFS_Version 1, 2 and 3 all parse as version 1", arguments: [1, 2, 3] as [UInt32])
    func v1Versions(version: UInt32) throws {
        var m = try sampleMetadata(fek)
        m.efsVersion = version
        #expect(try WindowsEFSMetadata.parse(m.encode()).efsVersion == version)
    }

    // MARK: - Malformed input

    /// Applies `edit` to a valid $EFS and expects `code` with `words` in the message.
    func expectRejected(
        _ code: FormatError.Code, _ words: String, drf: Bool = true, _ edit: (inout [UInt8]) -> Void
    ) throws {
        var b = try sampleMetadata(fek, drf: drf).encode()
        edit(&b)
        let error = #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(b) }
        #expect(error?.code == code, "\(error?.message ?? "")")
        #expect(error?.message.contains(words) == true, "message: \(error?.message ?? "")")
    }

    @Test("sizes: at most 0x54, above 0x40000, Length mismatch")
    func sizes() throws {
        try expectRejected(.malformed, "more than 0x54") { b in
            b = Array(b.prefix(0x54))
            put32(&b, 0, 0x54)
        }
        try expectRejected(.truncated, "$EFS header") { b in b = Array(b.prefix(0x40)) }
        try expectRejected(.limitExceeded, "Length") { b in put32(&b, 0, 0x40001) }
        try expectRejected(.truncated, "Length says") { b in put32(&b, 0, UInt32(b.count + 4)) }
        try expectRejected(.trailingData, "Length says") { b in put32(&b, 0, UInt32(b.count - 4)) }
        let huge = [UInt8](repeating: 0, count: 0x40001)
        #expect(throws: FormatError(.limitExceeded, "")) { try WindowsEFSMetadata.parse(huge) }
    }

    @Test("offsets out of range")
    func offsets() throws {
        try expectRejected(.malformed, "DDF_Offset") { b in put32(&b, 0x40, UInt32(b.count + 0x100)) }
        try expectRejected(.malformed, "DDF_Offset") { b in put32(&b, 0x40, 0x30) }
        try expectRejected(.malformed, "DRF_Offset") { b in put32(&b, 0x44, 0x30) }
        try expectRejected(.malformed, "DRF_Offset") { b in put32(&b, 0x44, 0xFFFF_FFFF) }
        // The first entry at 0x58.
        try expectRejected(.malformed, "Length of DDF entry 0") { b in put32(&b, 0x58, 0) }
        try expectRejected(.malformed, "runs past the end") { b in put32(&b, 0x58, UInt32(b.count)) }
        try expectRejected(.limitExceeded, "Length of DDF entry 0") { b in put32(&b, 0x58, 0x10_0000) }
        try expectRejected(.malformed, "Public Key Information offset") { b in put32(&b, 0x58 + 4, le32(b, 0x58)) }
        try expectRejected(.malformed, "Encrypted FEK") { b in put32(&b, 0x58 + 12, le32(b, 0x58 + 12) + 4) }
        // Thumbprint offset = the Certificate Data length (just past its end).
        try expectRejected(.malformed, "thumbprint offset") { b in
            let cd = 0x58 + 20 + Int(le32(b, 0x58 + 20 + 16))
            put32(&b, cd, le32(b, 0x58 + 20 + 12))
        }
        // Display name offset past the Certificate Data.
        try expectRejected(.malformed, "display name offset") { b in
            let cd = 0x58 + 20 + Int(le32(b, 0x58 + 20 + 16))
            put32(&b, cd + 16, le32(b, 0x58 + 20 + 12) + 2)
        }
        // List count 3 with 2 entries: the DRF's count is read as an entry Length.
        try expectRejected(.malformed, "DDF entry 2") { b in put32(&b, 0x54, 3) }
    }

    @Test("overlapping structures")
    func overlaps() throws {
        try expectRejected(.malformed, "overlaps") { b in put32(&b, 0x44, 0x58) }  // DRF inside the DDF
        try expectRejected(.malformed, "overlaps") { b in put32(&b, 0x58 + 12, le32(b, 0x58 + 4)) }  // FEK on the PKI
        try expectRejected(.malformed, "overlaps") { b in put32(&b, 0x44, 0x54) }  // DRF = DDF
    }

    @Test("lists too long, thumbprint, certificate data and Encrypted FEK above their limits")
    func limits() throws {
        try expectRejected(.limitExceeded, "DDF entry count") { b in put32(&b, 0x54, 501) }
        try expectRejected(.limitExceeded, "DDF entry count") { b in put32(&b, 0x54, 0xFFFF_FFFF) }
        try expectRejected(.malformed, "no entries") { b in
            // An empty DDF, the DRF moved right after it.
            var m = try! sampleMetadata(fek)
            m.ddf = [m.ddf[0]]
            b = try! m.encode()
            let drf = Array(b[Int(le32(b, 0x44))...])
            b = Array(b[0..<0x58]) + drf
            put32(&b, 0x54, 0)
            put32(&b, 0x44, 0x58)
            put32(&b, 0, UInt32(b.count))
        }
        // Consistent layouts that break a limit, built with a permissive writer.
        var m = try sampleMetadata(fek)
        m.ddf[0].publicKeyInfo.certificate.thumbprint = pattern(101)
        #expect(throws: FormatError(.limitExceeded, "")) { try m.encode() }
        let thumb101 = try Self.unchecked { $0.ddf[0].publicKeyInfo.certificate.thumbprint = pattern(101) }
        #expect(throws: FormatError(.limitExceeded, "")) { try WindowsEFSMetadata.parse(thumb101) }
        let thumb100 = try Self.unchecked { $0.ddf[0].publicKeyInfo.certificate.thumbprint = pattern(100) }
        #expect(try WindowsEFSMetadata.parse(thumb100).ddf[0].publicKeyInfo.thumbprint == pattern(100))
        let bigCert = try Self.unchecked {
            $0.ddf[0].publicKeyInfo.certificate.displayName = String(repeating: "x", count: 16_400)
        }
        let e1 = #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(bigCert) }
        #expect(e1?.code == .limitExceeded && e1?.message.contains("Certificate Data length") == true)
        let bigFEK = try Self.unchecked { $0.ddf[0].encryptedFEK = pattern(1087) }
        let e2 = #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(bigFEK) }
        #expect(e2?.code == .limitExceeded && e2?.message.contains("Encrypted FEK length") == true)
        var list = try sampleMetadata(fek)
        list.ddf = Array(repeating: list.ddf[1], count: 501)
        #expect(throws: FormatError(.limitExceeded, "")) { try list.encode() }
    }

    /// Encodes `base` after `edit` with the limits of the writer lifted (a hostile writer).
    static func unchecked(_ edit: (inout WindowsEFSMetadata) -> Void) throws -> [UInt8] {
        var m = try sampleMetadata(try WindowsFEK(algorithm: .aes256, key: pattern(32)))
        edit(&m)
        return try UncheckedWriter.encode(m)
    }

    @Test("gaps above 8 bytes are refused, 8 are accepted")
    func gaps() throws {
        // 12 bytes between the DDF and DRF lists.
        try expectRejected(.malformed, "gap of 12 bytes") { b in
            let drf = Int(le32(b, 0x44))
            b.insert(contentsOf: [UInt8](repeating: 0, count: 12), at: drf)
            put32(&b, 0x44, UInt32(drf + 12))
            put32(&b, 0, UInt32(b.count))
        }
        // 16 bytes after the last list.
        try expectRejected(.malformed, "gap of 16 bytes at the end") { b in
            b += [UInt8](repeating: 0, count: 16)
            put32(&b, 0, UInt32(b.count))
        }
        // 8 bytes are fine.
        var b = try sampleMetadata(fek).encode()
        b += [UInt8](repeating: 0, count: 8)
        put32(&b, 0, UInt32(b.count))
        #expect(try WindowsEFSMetadata.parse(b).ddf.count == 2)
    }

    @Test("bad SIDs, names and Public Key Information types")
    func fields() throws {
        let sid = { (b: [UInt8]) in 0x58 + 20 + Int(le32(b, 0x58 + 20 + 4)) }
        try expectRejected(.malformed, "revision 2") { b in b[sid(b)] = 2 }
        try expectRejected(.limitExceeded, "sub-authority count") { b in b[sid(b) + 1] = 16 }
        try expectRejected(.unsupportedAlgorithm, "type 1 (CryptoAPI container)") { b in put32(&b, 0x58 + 20 + 8, 1) }
        // The display name is the last field: overwrite its terminating NUL and the padding.
        try expectRejected(.malformed, "not NUL-terminated") { b in
            let pki = 0x58 + 20
            let cd = pki + Int(le32(b, pki + 16)), cdEnd = cd + Int(le32(b, pki + 12))
            let dn = cd + Int(le32(b, cd + 16))
            for i in stride(from: dn, to: cdEnd, by: 2) { b[i] = 0x41; b[i + 1] = 0 }
        }
        // A lone surrogate in the display name.
        try expectRejected(.malformed, "not valid UTF-16") { b in
            let pki = 0x58 + 20
            let cd = pki + Int(le32(b, pki + 16))
            let dn = cd + Int(le32(b, cd + 16))
            b[dn] = 0x00
            b[dn + 1] = 0xD8
        }
    }

    @Test("every single-byte corruption of a valid $EFS is parsed or refused, never a crash")
    func corruption() throws {
        let b = try sampleMetadata(fek).encode()
        for i in 0..<b.count {
            for v: UInt8 in [0x00, 0xFF, b[i] ^ 0x01, b[i] &+ 0x80] {
                var c = b
                c[i] = v
                _ = try? WindowsEFSMetadata.parse(c)
            }
        }
        // Every byte of Length, EFS_Version, DDF_Offset and DRF_Offset, and of the first entry's offsets and
        // lengths, matters: setting it to 0xFF is refused.
        let fields = [0x00, 0x08, 0x40, 0x44, 0x58, 0x5C, 0x60, 0x64].flatMap { $0..<($0 + 4) }
        for i in fields {
            var c = b
            c[i] = 0xFF
            #expect(throws: FormatError.self, "byte \(i)") { try WindowsEFSMetadata.parse(c) }
        }
        for n in 0..<b.count { #expect(throws: FormatError.self) { try WindowsEFSMetadata.parse(b.prefix(n)) } }
    }
}

/// UTF-16LE bytes.
enum RawUTF16 {
    static func bytes(_ s: String) -> [UInt8] {
        s.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
    }
}

/// A writer with the same layout as ``WindowsEFSMetadata/encode()`` but no limit checks, to make consistent
/// $EFS values that break a limit.
enum UncheckedWriter {
    static func pad(_ b: inout [UInt8]) { while b.count % 4 != 0 { b.append(0) } }

    static func encode(_ m: WindowsEFSMetadata) throws -> [UInt8] {
        let ddf = list(m.ddf), drf = m.drf.map(list)
        var b = [UInt8](repeating: 0, count: 0x54)
        put32(&b, 0x08, m.efsVersion)
        b.replaceSubrange(0x10..<0x20, with: m.efsID)
        put32(&b, 0x40, 0x54)
        put32(&b, 0x44, drf == nil ? 0 : UInt32(0x54 + ddf.count))
        b += ddf + (drf ?? [])
        put32(&b, 0, UInt32(b.count))
        return b
    }

    static func list(_ entries: [WindowsKeyEntry]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4)
        put32(&b, 0, UInt32(entries.count))
        for e in entries { b += entry(e) }
        return b
    }

    static func entry(_ e: WindowsKeyEntry) -> [UInt8] {
        var cd = [UInt8](repeating: 0, count: 20)
        put32(&cd, 0, 20)
        put32(&cd, 4, UInt32(e.publicKeyInfo.certificate.thumbprint.count))
        cd += e.publicKeyInfo.certificate.thumbprint
        pad(&cd)
        let h = e.publicKeyInfo.certificate
        for (i, name) in [h.containerName, h.providerName, h.displayName].enumerated() {
            guard let name else { continue }
            put32(&cd, 8 + 4 * i, UInt32(cd.count))
            cd += RawUTF16.bytes(name) + [0, 0]
            pad(&cd)
        }
        let sid = e.publicKeyInfo.sid?.bytes ?? []
        var pki = [UInt8](repeating: 0, count: 28)
        put32(&pki, 4, sid.isEmpty ? 0 : 28)
        put32(&pki, 8, 3)
        put32(&pki, 12, UInt32(cd.count))
        put32(&pki, 16, UInt32(28 + sid.count))
        pki += sid + cd
        put32(&pki, 0, UInt32(pki.count))
        var out = [UInt8](repeating: 0, count: 20)
        put32(&out, 4, 20)
        out += pki
        pad(&out)
        put32(&out, 8, UInt32(e.encryptedFEK.count))
        put32(&out, 12, UInt32(out.count))
        out += e.encryptedFEK
        pad(&out)
        put32(&out, 0, UInt32(out.count))
        put32(&out, 16, e.flags)
        return out
    }
}
