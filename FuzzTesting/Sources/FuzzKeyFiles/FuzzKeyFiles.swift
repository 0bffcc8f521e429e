// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Foundation
import FuzzSupport

// Fuzzes the key-store file parsers (`Documentation/key-store-format.md`): `PrivateKeyFile.decode` (PKCS#8 and
// PBES2-encrypted PKCS#8, PEM or DER), `KeyBundle(parsing:)` (what `efs key import` reads) and
// `EFSCertificate(pemOrDER:)`. The input is the file as is. Encrypted keys are tried with the passphrase "fuzz"
// (the seed corpus's encrypted keys use it, with few PBKDF2 rounds, so decryption is reached). Input: the file,
// or 0xFF and the DER of an encrypted key (see below).

let passphrase = Passphrase(Array("fuzz".utf8))

func use(_ cert: EFSCertificate) {
    _ = cert.displayName
    _ = cert.isRecoveryAgent
    _ = cert.notValidAfter
    _ = cert.pem
}

/// PEM text of `der` under `label`, as openssl writes it.
func pem(_ label: String, _ der: ArraySlice<UInt8>) -> [UInt8] {
    let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
    return Array("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n".utf8)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    // Encrypted keys are read only from PEM, whose base64 mutations rarely stay valid. An input starting with 0xFF
    // (which no PEM, DER or UTF-8 file does) is DER that the harness wraps as `ENCRYPTED PRIVATE KEY`, so the
    // PBES2 parser gets structured mutations.
    if bytes.first == 0xFF { bytes = pem("ENCRYPTED PRIVATE KEY", bytes.dropFirst()) }

    var cert: EFSCertificate?
    do { cert = try EFSCertificate(pemOrDER: bytes) } catch { Fuzz.note("certificate: \(error)") }
    if let cert { use(cert); Fuzz.note("certificate ok: \(cert.displayName) \(cert.algorithm)") }

    do {
        let key = try PrivateKeyFile.decode(bytes, passphrase: { passphrase })
        _ = key.pkcs8DER()
        if let cert { _ = key.matches(cert) }
        Fuzz.note("private key ok")
    } catch { Fuzz.note("private key: \(error)") }

    var parsed: KeyBundle?
    do { parsed = try KeyBundle(parsing: bytes) } catch { Fuzz.note("bundle: \(error)") }
    if let bundle = parsed {
        Fuzz.note("bundle ok: \(bundle.certificates.count) certificates, \(bundle.privateKeys.count) keys")
        Fuzz.check(!bundle.certificates.isEmpty || !bundle.privateKeys.isEmpty, "an empty bundle was accepted")
        for c in bundle.certificates { use(c) }
        // `efs key import` decodes each key block it found.
        // The first key block is the one `PrivateKeyFile.decode(bytes)` above already decoded (PBKDF2 is slow).
        for pem in bundle.privateKeys.dropFirst().prefix(3) {
            _ = try? PrivateKeyFile.decode(Array(pem.utf8), passphrase: { passphrase })
        }
    }
    return 0
}

@_cdecl("FuzzKeyFiles_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}
