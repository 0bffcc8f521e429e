// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Foundation
import SystemPackage

/// Runs the built `efs` binary, as a user would.
public struct CLIRunner: Sendable {
    public struct Result: Sendable {
        public var status: Int32
        public var stderr: String
        public var stdoutBytes: [UInt8]
        /// Standard output as text, decoded on demand (decoding large binary output is slow under swift-testing,
        /// which records a backtrace for every error thrown inside the repair path).
        public var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    }

    public let binary: String
    public var environment: [String: String]

    /// Finds `efs` next to the test bundle (SwiftPM builds it there), or `$EFS_BINARY`.
    public static func locate() -> String {
        if let b = ProcessInfo.processInfo.environment["EFS_BINARY"] { return b }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("efs").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/efs"
    }

    public init(home: FilePath, extra: [String: String] = [:]) {
        binary = Self.locate()
        var env = ProcessInfo.processInfo.environment
        env["EFS_HOME"] = home.string
        env.removeValue(forKey: "EFS_PASSPHRASE_FILE")
        env.removeValue(forKey: "EFS_CRASH_AT")
        for (k, v) in extra { env[k] = v }
        environment = env
    }

    @discardableResult
    public func run(_ args: [String], stdin: [UInt8] = [], cwd: FilePath? = nil, env: [String: String] = [:]) -> Result {
        execute(binary, args, stdin: stdin, cwd: cwd, env: env)
    }

    /// Runs `command[0]` with the rest as arguments (e.g. a `setpriv … efs …` wrapper), with this runner's environment.
    public func runWrapped(_ command: [String], stdin: [UInt8] = []) -> Result {
        execute(command[0], Array(command.dropFirst()), stdin: stdin, cwd: nil, env: [:])
    }

    func execute(_ executable: String, _ args: [String], stdin: [UInt8], cwd: FilePath?, env: [String: String]) -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var e = environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd.string) }
        // Standard input and error go through temporary files, so no extra threads are needed.
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("efs-cli-\(UUID().uuidString)")
        let inURL = tmp.appendingPathExtension("in"), errURL = tmp.appendingPathExtension("err")
        FileManager.default.createFile(atPath: inURL.path, contents: Data(stdin))
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: inURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let outPipe = Pipe()
        p.standardInput = FileHandle(forReadingAtPath: inURL.path)
        p.standardOutput = outPipe
        p.standardError = FileHandle(forWritingAtPath: errURL.path)
        do { try p.run() } catch { return Result(status: -1, stderr: "cannot run \(binary): \(error)", stdoutBytes: []) }
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return Result(status: p.terminationStatus, stderr: String(decoding: errData, as: UTF8.self), stdoutBytes: TestFiles.bytes(of: out))
    }
}
