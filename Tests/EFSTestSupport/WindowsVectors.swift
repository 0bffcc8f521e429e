// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import Foundation
import SystemPackage

/// The frozen Windows EFS vectors of `Tests/EFSWindowsTests/Vectors` (made by the independent Python generator),
/// read from the source tree: `frozen/vectors.json` and the files it names.
public enum WindowsVectors {
    /// `Tests/EFSWindowsTests/Vectors`.
    public static let directory = FilePath(#filePath).removingLastComponent().removingLastComponent()
        .appending("EFSWindowsTests/Vectors")
    public static let root = directory.appending("frozen")
    /// The independent checker (`check-windows-stream.py`).
    public static let checker = directory.appending("check-windows-stream.py")
    /// The key files of each identity, by their name in the manifest's `keys[].files`.
    public static let flavours = ["pkcs8", "pkcs8Encrypted", "pfxModern", "pfxLegacy3DES", "pfxLegacyRC2"]

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = (try? Data(contentsOf: URL(fileURLWithPath: root.appending("vectors.json").string))) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }()

    static let passwords: [String: String] = {
        let url = URL(fileURLWithPath: root.appending("keys/passwords.json").string)
        let data = (try? Data(contentsOf: url)) ?? Data()
        return (try? JSONSerialization.jsonObject(with: data) as? [String: String]) ?? [:]
    }()

    public static func list(_ key: String) -> [[String: Any]] { manifest[key] as? [[String: Any]] ?? [] }
    public static var vectorNames: [String] { list("vectors").compactMap { $0["name"] as? String } }
    public static func vector(_ name: String) -> [String: Any] { list("vectors").first { $0["name"] as? String == name } ?? [:] }
    /// A file named in the manifest (relative to `frozen/`).
    public static func path(_ relative: String) -> FilePath { root.appending(relative) }

    /// The relative path of an identity's key file of one flavour (see ``flavours``).
    public static func keyFile(_ id: String, _ flavour: String) -> String {
        let k = list("keys").first { $0["id"] as? String == id }
        return (k?["files"] as? [String: String])?[flavour] ?? "missing-\(id)-\(flavour)"
    }

    /// The password of a key file (relative path), if it has one.
    public static func password(_ relative: String) -> String? { passwords[relative] }

    /// SHA-256 in lower-case hex, as the manifest writes it.
    public static func sha256(_ bytes: [UInt8]) -> String { Hex.encode(LegacyCrypto.sha256(bytes)) }

    /// Whether python3 with `cryptography` is here to run ``checker``.
    public static let hasPythonChecker: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import cryptography"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    /// Runs the checker with `arguments`; returns its status and output.
    public static func runChecker(_ arguments: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", checker.string] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        guard (try? p.run()) != nil else { return (-1, "cannot run python3") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }
}
