// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Foundation
import Testing

@testable import EFSWindows

/// Writes Windows-format streams made by this module for the independent Python checker
/// (`Vectors/check-windows-stream.py --strict`), the return direction of issue 5 part 6. Runs only when
/// `EFS_WINDOWS_EXPORT_DIR` names a directory:
///
///     EFS_WINDOWS_EXPORT_DIR=/tmp/x swift test --filter ExportForChecker
///     for f in /tmp/x/*.robs; do Vectors/check-windows-stream.py "$f" --key Vectors/frozen/keys/alice.key.pem \
///         --cert Vectors/frozen/keys/alice.cert.der --strict; done
@Suite(
    "Export for the Python checker", .enabled(if: ProcessInfo.processInfo.environment["EFS_WINDOWS_EXPORT_DIR"] != nil))
struct ExportForCheckerTests {
    @Test("write ROBS, efs_raw and $EFS files for every algorithm and the interesting sizes")
    func export() throws {
        let dir = URL(fileURLWithPath: try #require(ProcessInfo.processInfo.environment["EFS_WINDOWS_EXPORT_DIR"]))
        let alice = try EFSCertificate(der: Frozen.file("keys/alice.cert.der"))
        let dra = try EFSCertificate(der: Frozen.file("keys/dra1.cert.der"))
        var manifest: [[String: Any]] = []
        for alg in WindowsAlgorithm.supported {
            for size in [0, 1, 511, 512, 513, 65536, 65537, 200_000] {
                let fek = try WindowsFEK.generate(alg)
                let metadata = WindowsEFSMetadata(
                    efsVersion: 2, efsID: LegacyCrypto.randomBytes(16),
                    ddf: [
                        try .wrapping(
                            fek, for: alice, sid: WindowsSID("S-1-5-21-1-2-3-1001"), containerName: "c",
                            providerName: "p")
                    ],
                    drf: [try .wrapping(fek, for: dra)])
                let plain = pattern(size, seed: UInt8(size & 0xFF))
                let cipher = try WindowsDataCipher(fek: fek)
                let ct = try encryptAll(cipher, plain)
                let named = pattern(300, seed: 1)
                let object = try WindowsRawObject(
                    metadataBytes: metadata.encode(),
                    streams: [
                        .init(kind: .data, segments: WindowsRawObject.segments(ciphertext: ct, size: UInt64(size))),
                        .init(
                            kind: .named("notes"),
                            segments: WindowsRawObject.segments(ciphertext: encryptAll(cipher, named), size: 300)),
                    ])
                let name = "swift-\(alg.keyLength!)-\(size)"
                try Data(object.encode()).write(to: dir.appendingPathComponent("\(name).robs"))
                let (efsRaw, efsInfo) = try object.toNTFS3G()
                try Data(efsRaw).write(to: dir.appendingPathComponent("\(name).efs_raw"))
                try Data(efsInfo).write(to: dir.appendingPathComponent("\(name).efs"))
                manifest.append([
                    "name": name, "algorithm": "\(alg)", "size": size,
                    "plaintextSHA256": Hex.encode(LegacyCrypto.sha256(plain)),
                    "notesSHA256": Hex.encode(LegacyCrypto.sha256(named)),
                ])
            }
        }
        let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try json.write(to: dir.appendingPathComponent("manifest.json"))
    }
}
