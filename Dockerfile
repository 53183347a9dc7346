# callfloor server image: static binary on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/callfloor ./cmd/callfloor

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/callfloor /callfloor
USER nonroot
ENTRYPOINT ["/callfloor"]
