// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import Foundation
import Testing

@testable import EFSWindows

/// The frozen outputs of `Vectors/make-windows-vectors.py`, an independent generator written against the spec with
/// Python's `cryptography`: `Vectors/frozen/vectors.json` and the files it names.
enum Frozen {
    static let root: URL? = Bundle.module.url(forResource: "frozen", withExtension: nil, subdirectory: "Vectors")

    static func manifest() throws -> [String: Any] {
        let url = try #require(root?.appendingPathComponent("vectors.json"))
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func file(_ relative: String) throws -> [UInt8] {
        let url = try #require(root?.appendingPathComponent(relative))
        return Array(try Data(contentsOf: url))
    }

    static func list(_ key: String) throws -> [[String: Any]] {
        try #require(try manifest()[key] as? [[String: Any]])
    }

    static func vectorNames() -> [String] {
        ((try? list("vectors")) ?? []).compactMap { $0["name"] as? String }
    }

    static func malformedNames() -> [String] {
        ((try? list("malformed")) ?? []).compactMap { $0["name"] as? String }
    }

    /// The RSA private key of `id` from its PKCS#8 PEM file.
    static func key(_ id: String) throws -> UserPrivateKey {
        let keys = try list("keys")
        let k = try #require(keys.first { $0["id"] as? String == id })
        let files = try #require(k["files"] as? [String: String])
        let path = try #require(files["pkcs8"])
        let pem = try #require(String(validating: try file(path), as: UTF8.self))
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try #require(Data(base64Encoded: body))
        return try UserPrivateKey.parseLegacyRSA(der: Array(der))
    }

    /// The plaintext rule of the manifest: block i = SHA-256(label ‖ LE64(seed) ‖ LE64(i)), cut, zero ranges.
    static func plaintext(seed: UInt64, size: Int, zeroRanges: [[Int]]) throws -> [UInt8] {
        let m = try manifest()
        let label = hex(try #require((m["plaintext"] as? [String: Any])?["labelHex"] as? String))
        var out: [UInt8] = []
        out.reserveCapacity(size + 32)
        var i: UInt64 = 0
        while out.count < size {
            var w = ByteWriter()
            w.write(bytes: label)
            w.write(seed)
            w.write(i)
            out += LegacyCrypto.sha256(w.bytes)
            i += 1
        }
        out = Array(out.prefix(size))
        for r in zeroRanges { for j in r[0]..<r[1] { out[j] = 0 } }
        return out
    }
}

@Suite("Frozen vectors from the independent Python generator")
struct FrozenVectorTests {
    @Test("the manifest is present and complete")
    func manifest() throws {
        #expect(Frozen.vectorNames().count >= 20)
        #expect(Frozen.malformedNames().count >= 30)
        let algs = Set(try Frozen.list("vectors").compactMap { $0["algorithm"] as? String })
        #expect(algs == ["AES-256", "3DES", "DESX"])
    }

    @Test("each vector parses, opens with every listed key and decrypts end to end", arguments: Frozen.vectorNames())
    func vector(name: String) throws {
        let v = try #require(try Frozen.list("vectors").first { $0["name"] as? String == name })
        let files = try #require(v["files"] as? [String: String])
        let robs = try Frozen.file(try #require(files["robs"]))
        let efs = try Frozen.file(try #require(files["efs"]))
        let object = try WindowsRawObject.parse(robs)
        #expect(object.metadataBytes == efs)

        // Metadata fields as the generator wrote them.
        let info = try #require(v["efs"] as? [String: Any])
        let m = object.metadata
        #expect(m.efsVersion == UInt32(try #require(info["efsVersion"] as? Int)))
        #expect(m.efsID == hex(try #require(info["efsIdHex"] as? String)))
        for (list, entries) in [("ddf", m.ddf), ("drf", m.drf ?? [])] {
            let expected = try #require(info[list] as? [[String: Any]])
            #expect(entries.count == expected.count, "\(list) count")
            for (e, x) in zip(entries, expected) {
                let h = e.publicKeyInfo.certificate
                #expect(Hex.encode(h.thumbprint) == x["thumbprint"] as? String)
                #expect(h.containerName == x["containerName"] as? String)
                #expect(h.providerName == x["providerName"] as? String)
                #expect(h.displayName == x["displayName"] as? String)
                #expect(e.publicKeyInfo.sid?.description == x["sid"] as? String)
                #expect(e.flags == UInt32(try #require(x["flags"] as? Int)))
                #expect(Hex.encode(LegacyCrypto.sha256(e.encryptedFEK)) == x["encryptedFEKSHA256"] as? String)
            }
        }
        let strict = try #require((v["robs"] as? [String: Any])?["strictConformant"] as? Bool)
        if strict {
            // Our writer reproduces the generator's Windows-shaped bytes exactly.
            #expect(try m.encode() == efs, "$EFS re-encoding")
            #expect(try object.encode() == robs, "ROBS re-encoding")
        } else {
            #expect(try WindowsEFSMetadata.parse(m.encode()) == m)
        }

        // Every key listed opens its entry and gives the same FEK.
        let fekInfo = try #require(v["fek"] as? [String: Any])
        let openWith = try #require(v["openWith"] as? [[String: Any]])
        #expect(!openWith.isEmpty)
        var cipher: WindowsDataCipher?
        for o in openWith {
            let key = try Frozen.key(try #require(o["keyId"] as? String))
            let (fek, match) = try m.unwrapFEK(using: key, thumbprint: hex(try #require(o["thumbprint"] as? String)))
            #expect(match.isRecovery == (o["list"] as? String == "drf"))
            #expect(match.index == o["index"] as? Int)
            #expect(fek.key == hex(try #require(fekInfo["keyHex"] as? String)))
            #expect(fek.algorithm.rawValue == UInt32(try #require(fekInfo["algId"] as? Int)))
            #expect(fek.entropy == UInt32(try #require(fekInfo["entropy"] as? Int)))
            #expect(fek.isWeak == (v["weak"] as? Bool))
            cipher = try WindowsDataCipher(fek: fek)
            // Without the thumbprint, trial unwrapping finds it too.
            #expect(try m.unwrapFEK(using: key, thumbprint: nil).0.key == fek.key)
        }
        let c = try #require(cipher)

        // Every stream decrypts to the generator's plaintext, from the ROBS and from efs_raw.
        let streams = try #require(v["streams"] as? [[String: Any]])
        #expect(object.streams.count == streams.count)
        for (s, x) in zip(object.streams, streams) {
            #expect(
                Hex.encode(RawUTF16.bytes(s.kind == .data ? "::$DATA" : ":\(s.name):$DATA")) == x["nameHex"] as? String
                    || s.kind == .data)
            let size = try #require(x["size"] as? Int)
            #expect(s.size == UInt64(size))
            let plain = try object.decrypt(s, cipher: c)
            #expect(Hex.encode(LegacyCrypto.sha256(plain)) == x["plaintextSHA256"] as? String, "\(name) \(s.name)")
            let expected = try Frozen.plaintext(
                seed: UInt64(try #require(x["plaintextSeed"] as? Int)), size: size,
                zeroRanges: x["zeroRanges"] as? [[Int]] ?? [])
            #expect(plain == expected)
            // Streaming through the segment decryptor gives the same extents.
            var d = WindowsSegmentDecryptor(cipher: c)
            var rebuilt = [UInt8](repeating: 0, count: size)
            for seg in s.segments {
                for e in try d.decrypt(try #require(seg.header), payload: seg.payload) {
                    rebuilt.replaceSubrange(Int(e.offset)..<(Int(e.offset) + e.bytes.count), with: e.bytes)
                }
            }
            #expect(rebuilt == expected && d.streamSize == UInt64(size))
            if let raw = x["efsRaw"] as? [String: Any], let rawFile = raw["file"] as? String {
                let efsRaw = try Frozen.file(rawFile)
                let fromRaw = try WindowsRawObject.fromNTFS3G(efsRaw: efsRaw, efsInfo: efs)
                #expect(try fromRaw.decrypt(fromRaw.streams[0], cipher: c) == expected)
                var r = EfsRawDecryptor(cipher: c)
                var out: [UInt8] = []
                for chunk in stride(from: 0, to: efsRaw.count, by: 4099) {
                    out += try r.decrypt(efsRaw[chunk..<min(chunk + 4099, efsRaw.count)])
                }
                out += try r.finish()
                #expect(out == expected)
                if s.kind == .data, strict { #expect(try object.toNTFS3G().efsRaw == efsRaw) }
            }
        }
    }

    @Test(
        "each malformed sample is refused (or, for the valid edge cases, accepted)", arguments: Frozen.malformedNames())
    func malformed(name: String) throws {
        let v = try #require(try Frozen.list("malformed").first { $0["name"] as? String == name })
        let bytes = try Frozen.file(try #require(v["file"] as? String))
        let input = try #require(v["input"] as? String)
        let kind = v["errorKind"] as? String
        let keyID = v["keyId"] as? String
        func parse() throws {
            switch input {
            case "efs": _ = try WindowsEFSMetadata.parse(bytes)
            case "robs" where keyID != nil:
                // Key errors: the stream is well-formed; opening it with the key fails.
                let object = try WindowsRawObject.parse(bytes)
                let keys = try Frozen.list("keys")
                let thumb = try #require(keys.first { $0["id"] as? String == keyID }?["thumbprint"] as? String)
                _ = try object.metadata.unwrapFEK(using: Frozen.key(keyID!), thumbprint: hex(thumb))
            case "robs": _ = try WindowsRawObject.parse(bytes)
            case "efsRaw": _ = try NTFS3GEfsRaw.parse(bytes)
            default: Issue.record("unknown input kind \(input)")
            }
        }
        guard let kind else {
            try parse()  // an edge case that must be accepted
            return
        }
        let error = #expect(throws: FormatError.self, "\(name): \(kind)") { try parse() }
        // The kinds of the generator's README, against our codes.
        let codes: [String: [FormatError.Code]] = [
            "unsupportedVersion": [.unsupportedVersion], "unknownVersion": [.unsupportedVersion],
            "tooLarge": [.limitExceeded], "listTooLong": [.limitExceeded], "thumbprintTooLong": [.limitExceeded],
            "certificateTooLarge": [.limitExceeded], "encryptedFEKTooLarge": [.limitExceeded],
            "lengthMismatch": [.truncated, .trailingData], "badSignature": [.badMagic],
            "unsupportedPublicKeyType": [.unsupportedAlgorithm], "truncated": [.truncated],
            "fekUnwrapFailed": [.authenticationFailed], "badFEK": [.malformed, .truncated, .trailingData],
            "unsupportedAlgorithm": [.unsupportedAlgorithm], "unsupportedKeyWrap": [.unsupportedAlgorithm],
        ]
        if let allowed = codes[kind], let error {
            let also = (v["alsoAccept"] as? [String] ?? []).flatMap { codes[$0] ?? [.malformed, .truncated] }
            #expect((allowed + also).contains(error.code), "\(name): \(kind) gave \(error.code): \(error.message)")
        }
    }
}
