// Compiled by MSBuild's RoslynCodeTaskFactory (see LibTorchSharpOnOldLibstdcxx.targets).
// Marks one entry of an ELF64 little-endian shared library's version-needs table (.gnu.version_r)
// as weak (VER_FLG_WEAK), so the dynamic loader accepts a libstdc++ that lacks that version.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class MarkElfVersionNeedWeak : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string VersionName { get; set; } = "";

    public override bool Execute()
    {
        foreach (var item in Files)
        {
            var path = item.GetMetadata("FullPath");
            try
            {
                var outcome = Patch(path);
                Log.LogMessage(MessageImportance.Normal, $"{path}: {outcome}");
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is ArgumentException)
            {
                Log.LogError($"Could not mark {VersionName} weak in {path}: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    private string Patch(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (bytes[4] != 2 || bytes[5] != 1)
            throw new InvalidDataException("not a 64-bit little-endian ELF file");

        var sectionHeaders = (long)BitConverter.ToUInt64(bytes, 0x28);
        int headerSize = BitConverter.ToUInt16(bytes, 0x3A);
        int sectionCount = BitConverter.ToUInt16(bytes, 0x3C);
        for (var i = 0; i < sectionCount; i++)
        {
            var header = checked((int)(sectionHeaders + (long)i * headerSize));
            if (BitConverter.ToUInt32(bytes, header + 4) != ShtGnuVerneed) continue;

            var offset = checked((int)BitConverter.ToUInt64(bytes, header + 0x18));
            var linkedStrings = BitConverter.ToUInt32(bytes, header + 0x28);
            var needCount = BitConverter.ToUInt32(bytes, header + 0x2C);
            var stringsHeader = checked((int)(sectionHeaders + (long)linkedStrings * headerSize));
            var strings = checked((int)BitConverter.ToUInt64(bytes, stringsHeader + 0x18));

            var need = offset;
            for (var n = 0; n < needCount; n++)
            {
                int auxCount = BitConverter.ToUInt16(bytes, need + 2);
                var aux = need + (int)BitConverter.ToUInt32(bytes, need + 8);
                for (var a = 0; a < auxCount; a++)
                {
                    var flags = BitConverter.ToUInt16(bytes, aux + 4);
                    var name = ReadString(bytes, strings + (int)BitConverter.ToUInt32(bytes, aux + 8));
                    if (name == VersionName)
                    {
                        if ((flags & VerFlgWeak) != 0) return "already weak";
                        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(bytes, aux + 4);
                        File.WriteAllBytes(path, bytes);
                        return $"marked version need {VersionName} weak";
                    }
                    aux += (int)BitConverter.ToUInt32(bytes, aux + 12);
                }
                need += (int)BitConverter.ToUInt32(bytes, need + 12);
            }
        }
        return $"no version need on {VersionName}, nothing to do";
    }

    private static string ReadString(byte[] bytes, int start)
    {
        var end = Array.IndexOf(bytes, (byte)0, start);
        return Encoding.ASCII.GetString(bytes, start, end - start);
    }
}
