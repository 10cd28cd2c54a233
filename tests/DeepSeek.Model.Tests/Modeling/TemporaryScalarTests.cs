using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using DeepSeek.Engine;
using DeepSeek.Model.Modeling;

namespace DeepSeek.Model.Tests.Modeling;

/// <summary>
/// No code of the model or the engine makes a temporary TorchSharp <c>Scalar</c> by an implicit
/// conversion (<c>x / dim</c>, <c>t.clamp(0, 1)</c>, <c>1 - t</c>): TorchSharp keeps no reference to
/// such a Scalar while LibTorch reads it, so a finalizer can free it mid-call ("Unknown scalar type",
/// "INTERNAL ASSERT FAILED at c10/core/Scalar.h"; a fresh-clone CI run on a busy machine failed a model
/// load in <c>RotaryEmbedding.Frequencies</c> so). <see cref="HeldScalars"/> says what to do instead.
/// The compiled IL is read, so every call site is found, load-time code included; this test project's own
/// code is held to the same rule (its tests run in parallel, which is when a finalizer strikes).
/// </summary>
public sealed class TemporaryScalarTests
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    [Theory]
    [InlineData(typeof(DeepSeekForCausalLM))]
    [InlineData(typeof(InferenceEngine))]
    [InlineData(typeof(DeepSeek.Runtime.Bench.NativeBenchmark))]
    [InlineData(typeof(TemporaryScalarTests))]
    public void No_method_converts_a_number_to_a_temporary_scalar(Type inAssembly)
    {
        var offenders = ImplicitScalarConversions(inAssembly.Assembly.Location);
        Assert.True(offenders.Count == 0,
            $"{offenders.Count} methods of {inAssembly.Assembly.GetName().Name} pass LibTorch a Scalar made by an implicit conversion; hold it (HeldScalars, a field, or `using var`):\n"
            + string.Join("\n", offenders));
    }

    /// <summary>Methods (Type.Method) whose IL calls <c>TorchSharp.Scalar.op_Implicit</c>.</summary>
    private static List<string> ImplicitScalarConversions(string path)
    {
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var typeHandle in metadata.TypeDefinitions)
        {
            var type = metadata.GetTypeDefinition(typeHandle);
            foreach (var methodHandle in type.GetMethods())
            {
                var method = metadata.GetMethodDefinition(methodHandle);
                if (method.RelativeVirtualAddress == 0) continue;
                var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes();
                if (il is not null && CallsImplicitScalar(metadata, il))
                    found.Add($"{TypeName(metadata, type)}.{metadata.GetString(method.Name)}");
            }
        }
        return [.. found];
    }

    private static bool CallsImplicitScalar(MetadataReader metadata, byte[] il)
    {
        for (var at = 0; at < il.Length;)
        {
            short value = il[at++];
            if (value == 0xFE) value = (short)(0xFE00 | il[at++]);
            var opCode = OpCodesByValue[value];
            if (opCode.OperandType == OperandType.InlineMethod)
            {
                var token = BitConverter.ToInt32(il, at);
                if (IsImplicitScalar(metadata, MetadataTokens.EntityHandle(token))) return true;
            }
            at += opCode.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
                _ => 4,
            };
        }
        return false;
    }

    /// <summary>
    /// <c>Scalar.op_Implicit</c>, and the Tensor members that make a temporary Scalar inside TorchSharp:
    /// <c>+</c> and one-argument <c>add</c> pass LibTorch an alpha of 1 of their own making
    /// (<see cref="HeldScalars.Plus(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor)"/> passes a held one;
    /// <c>-</c> and <c>sub</c> take no alpha from the managed side).
    /// </summary>
    private static bool IsImplicitScalar(MetadataReader metadata, EntityHandle handle)
    {
        if (handle.Kind != HandleKind.MemberReference) return false;
        var member = metadata.GetMemberReference((MemberReferenceHandle)handle);
        if (member.Parent.Kind != HandleKind.TypeReference) return false;
        var parent = metadata.GetTypeReference((TypeReferenceHandle)member.Parent);
        var name = metadata.GetString(member.Name);
        var typeName = metadata.GetString(parent.Name);
        if (typeName == "Scalar" && metadata.GetString(parent.Namespace) == "TorchSharp") return name == "op_Implicit";
        if (typeName != "Tensor") return false;
        if (name == "op_Addition") return true;
        var signature = metadata.GetBlobReader(member.Signature);
        signature.ReadSignatureHeader();
        var parameters = signature.ReadCompressedInteger();
        if (name == "add") return parameters == 1;
        if (!name.StartsWith("op_", StringComparison.Ordinal)) return false;
        // An operator with a number operand (t * 0.5f, 1 - t) converts it to a Scalar inside TorchSharp.
        SkipType(ref signature); // the return type
        for (var i = 0; i < parameters; i++)
            if (SkipType(ref signature) is SignatureTypeCode.Boolean or SignatureTypeCode.Byte or SignatureTypeCode.SByte or SignatureTypeCode.Int16
                or SignatureTypeCode.UInt16 or SignatureTypeCode.Int32 or SignatureTypeCode.UInt32 or SignatureTypeCode.Int64 or SignatureTypeCode.UInt64
                or SignatureTypeCode.Single or SignatureTypeCode.Double)
                return true;
        return false;
    }

    /// <summary>Reads one type of a signature (a primitive, or a class or value type by handle) and says what it was.</summary>
    private static SignatureTypeCode SkipType(ref BlobReader signature)
    {
        var code = signature.ReadSignatureTypeCode();
        if (code is SignatureTypeCode.TypeHandle) signature.ReadTypeHandle();
        else if (code is SignatureTypeCode.SZArray) SkipType(ref signature);
        else if (code is SignatureTypeCode.GenericTypeInstance)
        {
            SkipType(ref signature);
            var arguments = signature.ReadCompressedInteger();
            for (var i = 0; i < arguments; i++) SkipType(ref signature);
        }
        return code;
    }

    private static string TypeName(MetadataReader metadata, TypeDefinition type)
    {
        var name = metadata.GetString(type.Name);
        return type.GetDeclaringType() is { IsNil: false } outer ? $"{TypeName(metadata, metadata.GetTypeDefinition(outer))}+{name}" : name;
    }
}
