# The runtime image on CPU, built by scripts/build-images.sh (buildah, no daemon, nothing pulled): the
# self-contained publish of runtime/DeepSeek.Runtime with the CPU LibTorch from NuGet and the embedded
# tiny model, on the base unpacked from Debian packages (images/base-packages). The build context is
# the publish folder, BASE_IMAGE the base the script assembled. The CUDA image is runtime/Dockerfile.
ARG BASE_IMAGE=localhost/deepseek-base:dev
FROM ${BASE_IMAGE}
COPY . /app/
USER 65532:65532
# http (OpenAI API, /health, /ready, /metrics) and grpc (Inference, health, reflection).
EXPOSE 8000 50051
ENTRYPOINT ["/app/deepseek-runtime"]
CMD ["serve", "--host", "0.0.0.0"]
