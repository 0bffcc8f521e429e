// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Foundation
import FuzzSupport

// Fuzzes the PKCS#12 (.pfx) reader, `PKCS12File(bytes:passphrase:)` and `PKCS12File.isPKCS12`: the PFX and
// AuthenticatedSafe structure, MacData and PBMAC1, PBES2 and the legacy PKCS#12 PBEs, SafeContents and bags.
// Input: the file, tried with the passphrase "fuzz" (the seeds use it, with few iterations, so MACs verify and
// contents decrypt). No PFX, PEM or UTF-8 file starts with 0xFD…0xFF, so a first byte there picks another
// passphrase for the rest: 0xFF the empty one (the empty and the null password paths), 0xFE "correct horse" and
// 0xFD "1234" (the passwords of the test fixtures and of RFC 9579 A.1, which are seeds too).
//
// Seeds without a MAC reach the bag parsers after decryption; seeds with one fuzz the MAC gate and MacData.

let fuzzPassphrase = Passphrase(Array("fuzz".utf8))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    var passphrase = fuzzPassphrase
    switch bytes.first {
    case 0xFF: passphrase = Passphrase([])
    case 0xFE: passphrase = Passphrase(Array("correct horse".utf8))
    case 0xFD: passphrase = Passphrase(Array("1234".utf8))
    default: break
    }
    if passphrase.isEmpty || bytes.first == 0xFE || bytes.first == 0xFD { bytes.removeFirst() }
    let looksLike = PKCS12File.isPKCS12(bytes)
    let pfx: PKCS12File
    do {
        pfx = try PKCS12File(bytes: bytes, passphrase: passphrase)
    } catch {
        Fuzz.note("pkcs12: \(error.code): \(error)")
        return 0
    }
    Fuzz.check(looksLike, "a file isPKCS12 refuses was read")
    Fuzz.note("pkcs12 ok: \(pfx.keys.count) keys, \(pfx.certificates.count) certificates, \(pfx.integrity)")
    Fuzz.check(pfx.keys.count + pfx.certificates.count + pfx.skippedBagCount <= PKCS12File.maximumBags, "bag limit")
    for bag in pfx.keys {
        if let cert = bag.certificate {
            Fuzz.check(pfx.certificates.contains(cert), "a key's certificate is not among the certificates")
        }
        do {
            let key = try bag.privateKey()
            _ = key.pkcs8DER()
            if let cert = try? bag.certificate?.efsCertificate() { _ = key.matches(cert) }
        } catch {
            Fuzz.note("key: \(error)")
        }
    }
    for cert in pfx.certificates {
        if let c = try? cert.efsCertificate() {
            Fuzz.check(c.thumbprint == cert.thumbprint, "thumbprints differ")
            _ = c.displayName
        }
    }
    _ = pfx.efsCertificates
    return 0
}

@_cdecl("FuzzPKCS12_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
