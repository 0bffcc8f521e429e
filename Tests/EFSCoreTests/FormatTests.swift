// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Testing

@testable import EFSCore

@Suite("FileHeader")
struct FileHeaderTests {
    let header = FileHeader(fileID: .random(), slotCapacity: 8192)

    @Test("encodes and decodes")
    func roundTrip() throws {
        #expect(try FileHeader(decoding: header.encoded()) == header)
        #expect(header.encoded().count == FileHeader.size)
        #expect(header.dataOffset == 4096 + 2 * 8192)
    }

    @Test("every truncation is refused as truncated or bad magic")
    func truncation() {
        let b = header.encoded()
        for n in 0..<b.count {
            #expect(throws: FormatError.self) { try FileHeader(decoding: b[0..<n]) }
        }
    }

    @Test("every bit flip is refused")
    func bitFlips() {
        let b = header.encoded()
        for i in 0..<b.count {
            var t = b
            t[i] ^= 0x10
            #expect(throws: FormatError.self) { try FileHeader(decoding: t) }
        }
    }

    @Test("unknown version and flags are refused with their own codes")
    func versionAndFlags() throws {
        func patched(_ off: Int, _ v: UInt8) -> [UInt8] {
            var t = Array(header.encoded()[0..<48])
            t[off] = v
            return t + Array(SHA256Prefix.of(t))
        }
        #expect(throws: FormatError(.unsupportedVersion, "")) { try FileHeader(decoding: patched(8, 2)) }
        #expect(throws: FormatError(.unknownFlags, "")) { try FileHeader(decoding: patched(10, 1)) }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try FileHeader(decoding: patched(12, 16)) }
        #expect(throws: FormatError(.unsupportedAlgorithm, "")) { try FileHeader(decoding: patched(13, 2)) }
        var zeroID = Array(header.encoded()[0..<48])
        for i in 16..<32 { zeroID[i] = 0 }
        #expect(throws: FormatError(.malformed, "")) { try FileHeader(decoding: zeroID + SHA256Prefix.of(zeroID)) }
    }

    @Test("oversized slot capacity is refused")
    func slotLimit() {
        var t = Array(header.encoded()[0..<48])
        t[32] = 0; t[33] = 0; t[34] = 0; t[35] = 0x7F
        #expect(throws: FormatError(.limitExceeded, "")) { try FileHeader(decoding: t + SHA256Prefix.of(t)) }
    }

    @Test("plain text is not mistaken for an encrypted file")
    func magic() {
        #expect(!FileHeader.hasMagic(Array("hello world, not encrypted".utf8)))
        #expect(FileHeader.hasMagic(header.encoded()))
    }
}

/// Recomputes the header checksum for hand-edited headers.
enum SHA256Prefix {
    static func of(_ b: [UInt8]) -> [UInt8] { Array(_sha256(b).prefix(16)) }
}

@Suite("SizeRecord")
struct SizeRecordTests {
    let fek = FileEncryptionKey.generate(fileID: .random())

    @Test("the copy with the higher generation wins; any damaged, emptied or stale copy is refused")
    func current() throws {
        let a = SizeRecord(generation: 4, plaintextSize: 100, isSparse: false).encoded(fek)
        let b = SizeRecord(generation: 5, plaintextSize: 200, isSparse: true).encoded(fek)
        #expect(try SizeRecord.current(a, b, fek).plaintextSize == 200)
        let c = SizeRecord(generation: 6, plaintextSize: 300, isSparse: true).encoded(fek)
        #expect(try SizeRecord.current(c, b, fek).plaintextSize == 300)
        var torn = b
        torn[40] ^= 1
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(a, torn, fek) }
        let zero = [UInt8](repeating: 0, count: 64)
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(a, zero, fek) }
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(zero, b, fek) }
        let old = SizeRecord(generation: 2, plaintextSize: 1, isSparse: false).encoded(fek)
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(old, b, fek) }
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(b, a, fek) }
        #expect(throws: FormatError.authenticationFailed) { try SizeRecord.current(a, b, FileEncryptionKey.generate(fileID: fek.fileID)) }
    }

    @Test("a new file has copy 0 empty and copy 1 at generation 1")
    func empty() throws {
        let zero = [UInt8](repeating: 0, count: 64)
        let g1 = SizeRecord(generation: 1, plaintextSize: 7, isSparse: false).encoded(fek)
        #expect(try SizeRecord.current(zero, g1, fek).plaintextSize == 7)
        #expect(throws: FormatError.self) { try SizeRecord.current(zero, zero, fek) }
        #expect(throws: FormatError.self) { try SizeRecord.current(g1, zero, fek) }
    }
}

@Suite("FileMetadata")
struct FileMetadataTests {
    static let alice = try! UserPrivateKey.generate(.p256)
    static let bob = try! UserPrivateKey.generate(.p384)
    static let aliceCert = try! alice.makeSelfSignedCertificate(name: "alice", recoveryAgent: false)
    static let bobCert = try! bob.makeSelfSignedCertificate(name: "bob", recoveryAgent: false)
    static let raKey = try! UserPrivateKey.generate(.p256)
    static let raCert = try! raKey.makeSelfSignedCertificate(name: "ra", recoveryAgent: true)

    func make() throws -> (FileMetadata, FileEncryptionKey) {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let m = FileMetadata(fileID: fek.fileID, users: [try Self.aliceCert.wrap(fek), try Self.bobCert.wrap(fek)],
                             recoveryAgents: [try Self.raCert.wrap(fek)])
        return (m, fek)
    }

    @Test("round trip, and every key unwraps the same FEK")
    func roundTrip() throws {
        let (m, fek) = try make()
        let body = m.encoded(fek)
        let d = try FileMetadata(decoding: body)
        try d.authenticate(fek)
        #expect(d.users.map(\.thumbprint) == [Self.aliceCert.thumbprint, Self.bobCert.thumbprint])
        #expect(d.recoveryAgents.map(\.displayName) == ["ra"])
        #expect(try Self.alice.unwrap(d.users[0], fileID: d.fileID).hasSameKey(as: fek))
        #expect(try Self.bob.unwrap(d.users[1], fileID: d.fileID).hasSameKey(as: fek))
        #expect(try Self.raKey.unwrap(d.recoveryAgents[0], fileID: d.fileID).hasSameKey(as: fek))
        #expect(throws: FormatError.authenticationFailed) { try Self.alice.unwrap(d.users[1], fileID: d.fileID) }
        #expect(Self.raCert.isRecoveryAgent && !Self.aliceCert.isRecoveryAgent)
    }

    @Test("a wrapped key for another file id does not unwrap (HPKE binds the file id)")
    func boundToFileID() throws {
        let (m, _) = try make()
        #expect(throws: FormatError.authenticationFailed) { try Self.alice.unwrap(m.users[0], fileID: .random()) }
    }

    @Test("swapped, duplicated or edited entries fail the MAC or the structure check")
    func tamper() throws {
        let (m, fek) = try make()
        var swapped = m
        swapped.users.swapAt(0, 1)
        #expect(throws: FormatError.authenticationFailed) { try FileMetadata(decoding: swapped.unauthenticatedBody() + m.encoded(fek).suffix(32)).authenticate(fek) }
        var dup = m
        dup.users.append(m.users[0])
        #expect(throws: FormatError.self) { try FileMetadata(decoding: dup.unauthenticatedBody() + [UInt8](repeating: 0, count: 32)) }
        let body = m.encoded(fek)
        // A changed certificate byte or thumbprint byte fails the structural SHA-1 check; any other byte the MAC.
        for i in stride(from: 0, to: body.count, by: 7) {
            var t = body
            t[i] ^= 0x01
            let rejected: Bool
            do { try FileMetadata(decoding: t).authenticate(fek); rejected = false } catch { rejected = true }
            #expect(rejected, "flip at \(i) was accepted")
        }
    }

    @Test("every truncation is refused")
    func truncation() throws {
        let (m, fek) = try make()
        let body = m.encoded(fek)
        for n in stride(from: 0, to: body.count, by: 3) {
            let ok: Bool
            do { try FileMetadata(decoding: body[0..<n]).authenticate(fek); ok = true } catch { ok = false }
            #expect(!ok, "truncated to \(n) was accepted")
        }
    }

    @Test("counts above the named maximum are refused before allocation")
    func limits() throws {
        var w = ByteWriter()
        w.write(UInt16(1)); w.write(UInt16(0)); w.write(bytes: FileID.random().bytes)
        w.write(UInt16(501)); w.write(UInt16(0)); w.writeZeros(32)
        #expect(throws: FormatError(.limitExceeded, "")) { try FileMetadata(decoding: w.bytes) }
        var z = ByteWriter()
        z.write(UInt16(1)); z.write(UInt16(0)); z.write(bytes: FileID.random().bytes)
        z.write(UInt16(0)); z.write(UInt16(0)); z.writeZeros(32)
        #expect(throws: FormatError(.malformed, "")) { try FileMetadata(decoding: z.bytes) }
    }

    /// Metadata with one user entry whose length fields are `t`, `c` and `w` (thumbprint, certificate, wrapped key),
    /// the declared lengths backed by that many bytes so that only the limit can refuse it.
    static func entry(thumbprint t: Int, certificate c: Int, wrapped wl: Int, ddf: Int = 1, drf: Int = 0) -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt16(1)); w.write(UInt16(0)); w.write(bytes: FileID.random().bytes)
        w.write(UInt16(ddf)); w.write(UInt16(drf))
        w.write(UInt8(1))  // RSA-OAEP-SHA256
        w.write(UInt8(truncatingIfNeeded: t)); w.writeZeros(min(t, 255))
        w.write(UInt32(c)); w.writeZeros(c)
        w.write(UInt16(truncatingIfNeeded: wl)); w.writeZeros(wl)
        w.writeZeros(32)  // MAC
        return w.bytes
    }

    @Test("every named maximum of the metadata is enforced: one above it is limitExceeded, at it the next check runs")
    func everyMetadataLimit() throws {
        let over = FormatError(.limitExceeded, "")
        // Thumbprint: 100 is the maximum (then refused as not 20 bytes), 101 is over.
        #expect(throws: over) { try FileMetadata(decoding: Self.entry(thumbprint: Limits.maximumThumbprintSize + 1, certificate: 1, wrapped: 1)) }
        #expect(throws: FormatError(.malformed, "")) { try FileMetadata(decoding: Self.entry(thumbprint: Limits.maximumThumbprintSize, certificate: 1, wrapped: 1)) }
        // Certificate: 32 KiB; one byte more is over (checked before reading it).
        #expect(throws: over) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: Limits.maximumCertificateSize + 1, wrapped: 1)) }
        #expect(throws: FormatError(.malformed, "")) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: Limits.maximumCertificateSize, wrapped: 1)) }
        // Wrapped key: 1024 bytes.
        #expect(throws: over) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: 10, wrapped: Limits.maximumWrappedKeySize + 1)) }
        #expect(throws: FormatError(.malformed, "")) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: 10, wrapped: Limits.maximumWrappedKeySize)) }
        // Entries per list: 500 in the DDF and in the DRF.
        #expect(throws: over) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: 10, wrapped: 1, ddf: Limits.maximumEntriesPerList + 1)) }
        #expect(throws: over) { try FileMetadata(decoding: Self.entry(thumbprint: 20, certificate: 10, wrapped: 1, drf: Limits.maximumEntriesPerList + 1)) }
        // The whole body: 4 MiB.
        #expect(throws: over) { try FileMetadata(decoding: [UInt8](repeating: 0, count: Limits.maximumMetadataSize + 1)) }
        // (The slot capacity of the header is checked in the header suite, `slotLimit`.)
        // Key files (PEM, PKCS#8, PKCS#12): 1 MiB.
        let big = [UInt8](repeating: 0x41, count: Limits.maximumKeyFileSize + 1)
        #expect(throws: over) { try PrivateKeyFile.decode(big, passphrase: { Passphrase(Array("x".utf8)) }).pkcs8DER() }
        #expect(throws: over) { try PKCS12File(bytes: big, passphrase: Passphrase(Array("x".utf8))) }
        #expect(throws: over) { try EFSCertificate(pemOrDER: big) }
    }

    @Test("a metadata slot detects torn writes with its checksum")
    func slot() throws {
        let (m, fek) = try make()
        let slot = MetadataSlot.encode(body: m.encoded(fek), generation: 3)
        #expect(try MetadataSlot.decode(slot, capacity: 8192)?.generation == 3)
        var torn = slot
        torn[slot.count - 1] ^= 1
        #expect(throws: FormatError(.checksumMismatch, "")) { try MetadataSlot.decode(torn, capacity: 8192) }
        #expect(try MetadataSlot.decode([UInt8](repeating: 0, count: 64), capacity: 8192) == nil)
        #expect(throws: FormatError(.limitExceeded, "")) { try MetadataSlot.decode(slot, capacity: 64) }
    }
}

@Suite("Keys and certificates")
struct KeyTests {
    @Test("RSA-2048 wraps with OAEP-SHA256 and unwraps")
    func rsa() throws {
        let key = try UserPrivateKey.generate(.rsa(bits: 2048))
        let cert = try key.makeSelfSignedCertificate(name: "rsa user", recoveryAgent: false)
        #expect(cert.algorithm == .rsaOAEPSHA256)
        let fek = FileEncryptionKey.generate(fileID: .random())
        let entry = try cert.wrap(fek)
        #expect(entry.wrappedKey.count == 256)
        #expect(try key.unwrap(entry, fileID: fek.fileID).hasSameKey(as: fek))
        let matches = key.matches(cert)
        #expect(matches)
    }

    @Test("P-384 uses its own HPKE suite")
    func p384() throws {
        let key = try UserPrivateKey.generate(.p384)
        let cert = try key.makeSelfSignedCertificate(name: "p384", recoveryAgent: false)
        #expect(cert.algorithm == .hpkeP384)
        let fek = FileEncryptionKey.generate(fileID: .random())
        let entry = try cert.wrap(fek)
        #expect(entry.wrappedKey.count == 97 + 48)
        #expect(try key.unwrap(entry, fileID: fek.fileID).hasSameKey(as: fek))
    }

    @Test("encrypted PKCS#8 round trip; a wrong passphrase is an authentication failure")
    func pkcs8() throws {
        let key = try UserPrivateKey.generate(.p256)
        let pem = PrivateKeyFile.encode(key, passphrase: Passphrase(Array("correct horse".utf8)), iterations: 2000)
        #expect(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"))
        let back = try PrivateKeyFile.decode(Array(pem.utf8)) { Passphrase(Array("correct horse".utf8)) }
        #expect(back.pkcs8DER() == key.pkcs8DER())
        #expect(throws: FormatError.authenticationFailed) {
            _ = try PrivateKeyFile.decode(Array(pem.utf8)) { Passphrase(Array("wrong".utf8)) }
        }
        let plain = PrivateKeyFile.encode(key, passphrase: nil)
        #expect(plain.contains("BEGIN PRIVATE KEY"))
        #expect(try PrivateKeyFile.decode(Array(plain.utf8)) { fatalError("no passphrase needed") }.pkcs8DER() == key.pkcs8DER())
    }

    @Test("hostile PBKDF2 iteration counts are refused before any work")
    func iterationLimit() throws {
        let key = try UserPrivateKey.generate(.p256)
        let pem = PrivateKeyFile.encode(key, passphrase: Passphrase(Array("x".utf8)), iterations: 2000)
        var p = try PrivateKeyFile.parseEncryptedInfo(try #require(PEMBlocks.der(pem)))
        #expect(p.iterations == 2000)
        p.iterations = PrivateKeyFile.maximumIterations + 1
        let clock = ContinuousClock()
        let t = clock.measure {
            #expect(throws: FormatError(.limitExceeded, "")) { _ = try PrivateKeyFile.decrypt(p, passphrase: Passphrase(Array("x".utf8))) }
        }
        #expect(t < .seconds(1))
        p.iterations = 1
        #expect(throws: FormatError(.limitExceeded, "")) { _ = try PrivateKeyFile.decrypt(p, passphrase: Passphrase(Array("x".utf8))) }
    }

    @Test("thumbprints print like cipher /c and parse in any form")
    func thumbprints() throws {
        let t = try #require(Thumbprint("1a2b3c4d5e6f708192a3b4c5d6e7f80910111213"))
        #expect(t.description == "1A2B 3C4D 5E6F 7081 92A3 B4C5 D6E7 F809 1011 1213")
        #expect(Thumbprint(t.description) == t)
        #expect(Thumbprint("1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:10:11:12:13") == t)
        #expect(Thumbprint("1a2b") == nil)
        #expect(Thumbprint("zz2b3c4d5e6f708192a3b4c5d6e7f80910111213") == nil)
    }

    @Test("garbage certificates and keys give clear errors")
    func garbage() {
        #expect(throws: FormatError.self) { try EFSCertificate(pemOrDER: Array("not a cert".utf8)) }
        #expect(throws: FormatError.self) { try EFSCertificate(pemOrDER: Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8)) }
        #expect(throws: (any Error).self) { try PrivateKeyFile.decode(Array("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8)) { Passphrase([]) } }
        #expect(throws: FormatError.self) { try EFSCertificate(der: [UInt8](repeating: 0x30, count: 40_000)) }
    }
}
