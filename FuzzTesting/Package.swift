// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer entry points for every parser of untrusted bytes in swift-efs (STYLE.md item 23, issue 6 part 4).
// Build (Linux, Swift 6.3):
//   swift build -c debug --package-path FuzzTesting -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// Run: FuzzTesting/run.sh SECONDS [TARGET…]. See README.md.
import Foundation
import PackageDescription

/// The identity SwiftPM gives `.package(path: "..")`: the name of the directory the main package is checked out in
/// ("main", "swift-efs", …), which `.product(name:package:)` must use.
let efs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // The declaration of libFuzzer's LLVMFuzzerRunDriver (see its header for why the targets need it).
        .target(name: "CFuzzDriver"),
        // Deterministic keys and checksum/MAC fix-ups shared by the targets (no fuzz entry point).
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "EFSCore", package: efs),
                .product(name: "Crypto", package: "swift-crypto"),
                "CFuzzDriver",
            ]
        ),
        .executableTarget(
            name: "FuzzRawStream",
            dependencies: [.product(name: "EFSRawStream", package: efs), .product(name: "EFSCore", package: efs), "FuzzSupport"]
        ),
        .executableTarget(name: "FuzzFileHeader", dependencies: [.product(name: "EFSCore", package: efs), "FuzzSupport"]),
        .executableTarget(name: "FuzzFileMetadata", dependencies: [.product(name: "EFSCore", package: efs), "FuzzSupport"]),
        .executableTarget(name: "FuzzKeyFiles", dependencies: [.product(name: "EFSCore", package: efs), "FuzzSupport"]),
        .executableTarget(name: "FuzzArchive", dependencies: [.product(name: "EFSArchive", package: efs), "FuzzSupport"]),
        .executableTarget(
            name: "FuzzWindowsMetadata",
            dependencies: [.product(name: "EFSWindows", package: efs), .product(name: "EFSCore", package: efs), "FuzzSupport"]
        ),
        .executableTarget(
            name: "FuzzWindowsRawStream",
            dependencies: [
                .product(name: "EFSWindows", package: efs), .product(name: "EFSRawStream", package: efs),
                .product(name: "EFSCore", package: efs), "FuzzSupport",
            ]
        ),
        .executableTarget(name: "FuzzWriteJournal", dependencies: [.product(name: "EFSCore", package: efs), "FuzzSupport"]),
        .executableTarget(name: "FuzzPKCS12", dependencies: [.product(name: "EFSCore", package: efs), "FuzzSupport"]),
    ]
)
