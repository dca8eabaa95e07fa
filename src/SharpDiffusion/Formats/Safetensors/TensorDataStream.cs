namespace SharpDiffusion.Formats.Safetensors;

/// <summary>
/// The write-only stream a <see cref="TensorToWrite.WriteData"/> callback receives: forwards to the output file,
/// refuses bytes beyond the tensor's length and reports progress.
/// </summary>
internal sealed class TensorDataStream : Stream
{
    private readonly Stream _target;
    private readonly string _tensorName;
    private readonly long _expected;
    private readonly Action<long> _onBytesWritten;

    public TensorDataStream(Stream target, string tensorName, long expected, Action<long> onBytesWritten)
    {
        _target = target;
        _tensorName = tensorName;
        _expected = expected;
        _onBytesWritten = onBytesWritten;
    }

    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;

    public override long Position
    {
        get => Written;
        set => throw new NotSupportedException("tensor data is written sequentially");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length > _expected - Written)
            throw new InvalidOperationException(
                $"tensor '{_tensorName}' wrote more than its {_expected} bytes ({Written} + {buffer.Length})");
        _target.Write(buffer);
        Written += buffer.Length;
        _onBytesWritten(buffer.Length);
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("write-only stream");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("tensor data is written sequentially");
    public override void SetLength(long value) => throw new NotSupportedException("tensor data is written sequentially");
}
